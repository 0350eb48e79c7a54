package casesvc

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// eventMessages lists the messages of events.proto: every event.
func eventMessages() []protoreflect.MessageDescriptor {
	msgs := casev1.File_koers_case_v1_events_proto.Messages()
	out := make([]protoreflect.MessageDescriptor, msgs.Len())
	for i := range out {
		out[i] = msgs.Get(i)
	}
	return out
}

func TestEveryEventHasAHistoryField(t *testing.T) {
	var missing []string
	for _, m := range eventMessages() {
		if _, ok := historyFields[m.FullName()]; !ok {
			missing = append(missing, string(m.FullName()))
		}
	}
	if len(missing) > 0 || len(historyFields) != len(eventMessages()) {
		t.Errorf("HistoryEntry.event lacks %v (it has %d fields for %d events)", missing, len(historyFields), len(eventMessages()))
	}
}

func TestEverySealedFieldNamesItsPlaintext(t *testing.T) {
	var sealed []string
	for _, m := range eventMessages() {
		for i := 0; i < m.Fields().Len(); i++ {
			if fd := m.Fields().Get(i); fd.Message() != nil && fd.Message().FullName() == sealedName {
				sealed = append(sealed, string(m.FullName())+"."+string(fd.Name()))
			}
		}
	}
	var known []string
	for k := range plaintexts {
		known = append(known, k)
	}
	slices.Sort(sealed)
	slices.Sort(known)
	if diff := cmp.Diff(sealed, known); diff != "" {
		t.Errorf("sealed fields of the events (-events +plaintexts table):\n%s", diff)
	}
}

func TestDigestIgnoresIDsAndPersonalFieldsOnly(t *testing.T) {
	base := &casev1.RecordSessionRequest{CaseId: "a", RequestId: "r", HeldOn: &casev1.Date{Year: 2025, Month: 1, Day: 2},
		Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 30, Notes: "x"}
	method := casev1.CaseService_RecordSession_FullMethodName
	want := digestOf(method, base)
	same := []func(r *casev1.RecordSessionRequest){
		func(r *casev1.RecordSessionRequest) { r.Notes = "something else" },
		func(r *casev1.RecordSessionRequest) { r.CaseId = "A" },
		func(r *casev1.RecordSessionRequest) { r.RequestId = "other" },
	}
	for i, edit := range same {
		r := proto.CloneOf(base)
		edit(r)
		if digestOf(method, r) != want {
			t.Errorf("edit %d changed the digest", i)
		}
	}
	other := []func(r *casev1.RecordSessionRequest){
		func(r *casev1.RecordSessionRequest) { r.DurationMinutes = 31 },
		func(r *casev1.RecordSessionRequest) { r.HeldOn.Day = 3 },
		func(r *casev1.RecordSessionRequest) { r.Kind = casev1.SessionKind_SESSION_KIND_TRAINING },
	}
	for i, edit := range other {
		r := proto.CloneOf(base)
		edit(r)
		if digestOf(method, r) == want {
			t.Errorf("edit %d left the digest unchanged", i)
		}
	}
	if digestOf(casev1.CaseService_AssignCoach_FullMethodName, base) == want {
		t.Error("the method is not part of the digest")
	}
	if base.GetNotes() != "x" || base.GetCaseId() != "a" {
		t.Error("digestOf changed its request")
	}
}

func TestParseCaseID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"3F2B7C1E-8A4D-4E6F-9B1A-2C3D4E5F6A7B", "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", true},
		{"3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", true},
		{"3f2b7c1e8a4d4e6f9b1a2c3d4e5f6a7b", "", false},
		{"{3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b}", "", false},
		{"urn:uuid:3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", "", false},
		{"00000000-0000-0000-0000-000000000000", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := parseCaseID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCaseID(%q) = %q, %t; want %q, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCaseCacheKeepsTheNewestOfABoundedNumber(t *testing.T) {
	c := newCaseCache(2)
	c.put("a", &loaded{events: 3})
	c.put("a", &loaded{events: 2}) // older: ignored
	if got, _ := c.get("a"); got.events != 3 {
		t.Errorf("a has %d events cached, want the newer 3", got.events)
	}
	c.put("b", &loaded{events: 1})
	c.get("a") // a is now the most recently used
	c.put("c", &loaded{events: 1})
	if _, ok := c.get("b"); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, s := range []string{"a", "c"} {
		if _, ok := c.get(s); !ok {
			t.Errorf("%s was evicted", s)
		}
	}
	off := newCaseCache(-1)
	off.put("a", &loaded{events: 1})
	if _, ok := off.get("a"); ok {
		t.Error("a disabled cache kept a case")
	}
}

// TestPlaintextLimitsFitTheSealedLimit checks the arithmetic behind the
// documented limits: the largest plaintexts, in four-byte characters, seal
// within casework.MaxSealedBytes.
func TestPlaintextLimitsFitTheSealedLimit(t *testing.T) {
	wide := func(n int) string { return string(slices.Repeat([]rune{'𝄞'}, n)) }
	goal := &casev1.DevelopmentGoal{Description: wide(MaxGoalDescriptionLength), Actions: wide(MaxGoalActionsLength),
		TargetOn: &casev1.Date{Year: 2199, Month: 12, Day: 31}}
	goals := &casev1.DevelopmentGoals{Goals: slices.Repeat([]*casev1.DevelopmentGoal{goal}, MaxGoals)}
	answers := &casev1.IntakeAnswers{ReasonForComing: wide(MaxAnswerLength), WhoAmI: wide(MaxAnswerLength),
		WhatDoIWant: wide(MaxAnswerLength), WhatCanIDo: wide(MaxAnswerLength), WhereDoIFindIt: wide(MaxAnswerLength),
		HowDoIGetThere: wide(MaxAnswerLength)}
	client := &casev1.ClientDetails{GivenName: wide(MaxNameLength), FamilyName: wide(MaxNameLength),
		Email: wide(MaxEmailLength), Phone: wide(MaxPhoneLength)}
	for _, m := range []proto.Message{goals, answers, client, &casev1.Note{Text: wide(MaxNoteLength)}} {
		f := &form{sealer: shapeSealer{}}
		if n := len(f.sealer.seal(m).GetCiphertext()); n > casework.MaxSealedBytes {
			t.Errorf("%T of full length seals to %d bytes, over %d", m, n, casework.MaxSealedBytes)
		}
		if size := proto.Size(m); size > MaxRequestBytes/2 {
			t.Errorf("%T of full length is %d bytes, too close to the request limit %d", m, size, MaxRequestBytes)
		}
	}
}
