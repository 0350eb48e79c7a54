package agencyfeed

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// hiddenTypes are message types removed wherever they appear: sealed
// personal data, and Any, whose content a walk cannot see into.
var hiddenTypes = map[protoreflect.FullName]bool{
	name(&eventv1.Sealed{}): true,
	name(&anypb.Any{}):      true,
}

// personalFields are plain fields that hold data of the client. None of
// the events routed today has one; they are cleared should a routing
// change ever let such an event through.
var personalFields = map[protoreflect.FullName]bool{
	field(&casev1.CaseOpened{}, "client_id"):             true,
	field(&casev1.CaseOpened{}, "birth_year"):            true,
	field(&casev1.IntakeCompleted{}, "warning_signals"):  true,
	field(&casev1.IntakeCompleted{}, "referral_advised"): true,
}

// field returns the full name of m's field called f; it panics at start-up
// when the schema has no such field, which a test catches.
func field(m proto.Message, f protoreflect.Name) protoreflect.FullName {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(f)
	if fd == nil {
		panic(fmt.Sprintf("agencyfeed: %s has no field %s", name(m), f))
	}
	return fd.FullName()
}

// redacted returns a copy of m with every hidden message, personal field
// and unknown field removed, at any depth.
func redacted(m proto.Message) proto.Message {
	c := proto.Clone(m)
	redact(c.ProtoReflect())
	return c
}

// redact removes from m, in place, what redacted removes.
func redact(m protoreflect.Message) {
	m.SetUnknown(nil)
	var clear []protoreflect.FieldDescriptor
	var nested []protoreflect.Message
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if personalFields[fd.FullName()] {
			clear = append(clear, fd)
			return true
		}
		switch {
		case fd.IsMap():
			if md := fd.MapValue().Message(); md != nil {
				if hiddenTypes[md.FullName()] {
					clear = append(clear, fd)
					return true
				}
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					nested = append(nested, mv.Message())
					return true
				})
			}
		case fd.Message() != nil:
			if hiddenTypes[fd.Message().FullName()] {
				clear = append(clear, fd)
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := range l.Len() {
					nested = append(nested, l.Get(i).Message())
				}
			} else {
				nested = append(nested, v.Message())
			}
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
	for _, n := range nested {
		redact(n)
	}
}
