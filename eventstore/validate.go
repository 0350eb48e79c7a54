package eventstore

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ValidateStreamName checks a stream name against the rules every adapter
// enforces: not empty, at most MaxStreamNameBytes, valid UTF-8, no control
// characters and no spaces. The error wraps ErrInvalidAppend.
func ValidateStreamName(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: stream name is empty", ErrInvalidAppend)
	case len(stream) > MaxStreamNameBytes:
		return fmt.Errorf("%w: stream name is %d bytes, over the limit of %d", ErrInvalidAppend, len(stream), MaxStreamNameBytes)
	case !utf8.ValidString(stream):
		return fmt.Errorf("%w: stream name is not valid UTF-8", ErrInvalidAppend)
	}
	for i, r := range stream {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: stream name has a control or space character %U at byte %d", ErrInvalidAppend, r, i)
		}
	}
	return nil
}

// ValidateAppend checks an append's input against the rules every adapter
// enforces: a valid stream name; 1 to MaxEventsPerAppend events; each with a
// non-zero ID unique within the append, a type of 1 to MaxEventTypeBytes
// printable bytes, and non-nil data; at most MaxAppendBytes of data and
// metadata in all. The error wraps ErrInvalidAppend and names the event.
func ValidateAppend(stream string, events []EventData) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalidAppend)
	}
	if len(events) > MaxEventsPerAppend {
		return fmt.Errorf("%w: %d events, over the limit of %d", ErrInvalidAppend, len(events), MaxEventsPerAppend)
	}
	seen := make(map[uuid.UUID]int, len(events))
	size := 0
	for i, e := range events {
		if e.ID == uuid.Nil {
			return fmt.Errorf("%w: event %d has the zero ID", ErrInvalidAppend, i)
		}
		if j, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: events %d and %d share ID %s", ErrInvalidAppend, j, i, e.ID)
		}
		seen[e.ID] = i
		if err := validateType(e.Type); err != nil {
			return fmt.Errorf("%w: event %d: %s", ErrInvalidAppend, i, err)
		}
		if e.Data == nil {
			return fmt.Errorf("%w: event %d has nil data", ErrInvalidAppend, i)
		}
		size += len(e.Data) + len(e.Metadata)
	}
	if size > MaxAppendBytes {
		return fmt.Errorf("%w: %d bytes of data and metadata, over the limit of %d", ErrInvalidAppend, size, MaxAppendBytes)
	}
	return nil
}

func validateType(t string) error {
	if t == "" {
		return fmt.Errorf("type is empty")
	}
	if len(t) > MaxEventTypeBytes {
		return fmt.Errorf("type is %d bytes, over the limit of %d", len(t), MaxEventTypeBytes)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("type has a byte 0x%02x at %d outside printable ASCII", c, i)
		}
	}
	return nil
}
