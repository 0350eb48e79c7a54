package agencyfeed

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// nestedType builds, at run time, a message type that hides Sealed values
// where no case event does yet: in a nested message, a list, a map, and an
// Any, beside plain fields.
//
//	message Outer {
//	  koers.event.v1.Sealed sealed = 1;
//	  Inner inner = 2;
//	  repeated Inner list = 3;
//	  map<string, koers.event.v1.Sealed> by_name = 4;
//	  google.protobuf.Any any = 5;
//	  string keep = 6;
//	}
//	message Inner { koers.event.v1.Sealed sealed = 1; string keep = 2; }
func nestedType(t *testing.T) protoreflect.MessageType {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	f := func(name string, n int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Label: label, Type: typ, JsonName: proto.String(name)}
		if typeName != "" {
			fd.TypeName = proto.String(typeName)
		}
		return fd
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("agencyfeed_test/nested.proto"),
		Package:    proto.String("agencyfeed.test"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"koers/event/v1/event.proto", "google/protobuf/any.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{
				Name: proto.String("Outer"),
				Field: []*descriptorpb.FieldDescriptorProto{
					f("sealed", 1, opt, msg, ".koers.event.v1.Sealed"),
					f("inner", 2, opt, msg, ".agencyfeed.test.Inner"),
					f("list", 3, rep, msg, ".agencyfeed.test.Inner"),
					f("by_name", 4, rep, msg, ".agencyfeed.test.Outer.ByNameEntry"),
					f("any", 5, opt, msg, ".google.protobuf.Any"),
					f("keep", 6, opt, str, ""),
				},
				NestedType: []*descriptorpb.DescriptorProto{{
					Name: proto.String("ByNameEntry"),
					Field: []*descriptorpb.FieldDescriptorProto{
						f("key", 1, opt, str, ""),
						f("value", 2, opt, msg, ".koers.event.v1.Sealed"),
					},
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				}},
			},
			{
				Name: proto.String("Inner"),
				Field: []*descriptorpb.FieldDescriptorProto{
					f("sealed", 1, opt, msg, ".koers.event.v1.Sealed"),
					f("keep", 2, opt, str, ""),
				},
			},
		},
	}
	fd, err := protodesc.NewFile(file, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessageType(fd.Messages().ByName("Outer"))
}

func TestRedactedClearsSealedValuesAtAnyDepth(t *testing.T) {
	mt := nestedType(t)
	md := mt.Descriptor()
	inner := md.Fields().ByName("inner").Message()
	sealedValue := func(what string) protoreflect.Value {
		return protoreflect.ValueOfMessage((&eventv1.Sealed{KeyId: "k-" + what, Ciphertext: []byte("secret-" + what)}).ProtoReflect())
	}
	newInner := func(keep string) protoreflect.Message {
		m := dynamicpb.NewMessage(inner)
		m.Set(inner.Fields().ByName("sealed"), sealedValue("inner-"+keep))
		m.Set(inner.Fields().ByName("keep"), protoreflect.ValueOfString(keep))
		return m
	}
	outer := mt.New()
	outer.Set(md.Fields().ByName("sealed"), sealedValue("outer"))
	outer.Set(md.Fields().ByName("inner"), protoreflect.ValueOfMessage(newInner("a")))
	list := outer.Mutable(md.Fields().ByName("list")).List()
	list.Append(protoreflect.ValueOfMessage(newInner("b")))
	list.Append(protoreflect.ValueOfMessage(newInner("c")))
	outer.Mutable(md.Fields().ByName("by_name")).Map().Set(protoreflect.ValueOfString("x").MapKey(), sealedValue("map"))
	anyValue, err := anypb.New(&eventv1.Sealed{Ciphertext: []byte("secret-any")})
	if err != nil {
		t.Fatal(err)
	}
	outer.Set(md.Fields().ByName("any"), protoreflect.ValueOfMessage(anyValue.ProtoReflect()))
	outer.Set(md.Fields().ByName("keep"), protoreflect.ValueOfString("outer"))
	// A field of a newer schema this binary does not know.
	outer.SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "secret-unknown"))

	got := redacted(outer.Interface())

	want := mt.New()
	keepOnly := func(keep string) protoreflect.Message {
		m := dynamicpb.NewMessage(inner)
		m.Set(inner.Fields().ByName("keep"), protoreflect.ValueOfString(keep))
		return m
	}
	want.Set(md.Fields().ByName("inner"), protoreflect.ValueOfMessage(keepOnly("a")))
	wl := want.Mutable(md.Fields().ByName("list")).List()
	wl.Append(protoreflect.ValueOfMessage(keepOnly("b")))
	wl.Append(protoreflect.ValueOfMessage(keepOnly("c")))
	want.Set(md.Fields().ByName("keep"), protoreflect.ValueOfString("outer"))
	if diff := cmp.Diff(want.Interface(), got, protocmp.Transform()); diff != "" {
		t.Errorf("redacted (-want +got):\n%s", diff)
	}
	b, err := proto.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte("k-")) {
		t.Errorf("the redacted message's bytes still hold sealed data: %q", b)
	}
	// The original is untouched.
	if !outer.Has(md.Fields().ByName("sealed")) {
		t.Error("redacted changed the message it was given")
	}
}

func TestRedactedClearsThePersonalPlainFields(t *testing.T) {
	opened := &casev1.CaseOpened{ClientId: "client-1", BirthYear: 1970, OrganisationId: "org-1", Department: "sales"}
	intake := &casev1.IntakeCompleted{QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE,
		WarningSignals: []casev1.WarningSignal{casev1.WarningSignal_WARNING_SIGNAL_ANXIETY}, ReferralAdvised: true}
	for _, tt := range []struct{ in, want proto.Message }{
		{opened, &casev1.CaseOpened{OrganisationId: "org-1", Department: "sales"}},
		{intake, &casev1.IntakeCompleted{QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE}},
	} {
		if diff := cmp.Diff(tt.want, redacted(tt.in), protocmp.Transform()); diff != "" {
			t.Errorf("redacted %s (-want +got):\n%s", name(tt.in), diff)
		}
	}
}

// reviewed lists, per event type the router may deliver, the plain (not
// sealed) fields it delivers, each judged to hold nothing personal beyond
// what the scope grants. A field added to a delivered type fails this test
// until someone decides: list it here, or add it to personalFields.
var reviewed = map[protoreflect.FullName][]protoreflect.Name{
	name(&casev1.ReportingConsentGranted{}):           {"recipient", "scopes"},
	name(&casev1.ReportingConsentRevoked{}):           {"recipient"},
	name(&casev1.ReintegrationAgencyAssigned{}):       {"agency_id"},
	name(&casev1.ReintegrationAgencyUnassigned{}):     {"agency_id", "reason"},
	name(&casev1.ReintegrationStarted{}):              {"sick_reported_on", "track"},
	name(&casev1.ReintegrationCheckpointRecorded{}):   {"kind", "held_on", "load_capacity", "second_track_decision"},
	name(&casev1.SecondTrackStarted{}):                {"started_on"},
	name(&casev1.PlacementAchieved{}):                 {"outcome", "placed_on"},
	name(&casev1.OutplacementEndedWithoutPlacement{}): {"ended_on", "reason", "market_ready"},
	name(&casev1.CaseClosed{}):                        {"outcome", "closed_on"},
	name(&casev1.SessionRecorded{}):                   {"held_on", "kind", "duration_minutes"},
	name(&casev1.OutplacementStarted{}):               {"started_on", "phase", "planned_months"},
	name(&casev1.OutplacementPhaseEntered{}):          {"phase", "entered_on"},
	name(&casev1.DevelopmentPlanAgreed{}):             {"agreed_on", "review_on"},
	name(&casev1.DevelopmentPlanRevised{}):            {"revised_on", "review_on"},
	name(&casev1.ClientDataErased{}):                  {"reason"},
}

func TestEveryDeliveredFieldWasReviewed(t *testing.T) {
	for typ, rt := range routes {
		if rt.rule == never {
			if _, ok := reviewed[typ]; ok {
				t.Errorf("%s is never delivered but listed as reviewed", typ)
			}
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(typ)
		if err != nil {
			t.Fatal(err)
		}
		var plain []protoreflect.Name
		fields := mt.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Message() != nil && hiddenTypes[fd.Message().FullName()] || personalFields[fd.FullName()] {
				continue
			}
			plain = append(plain, fd.Name())
		}
		if diff := cmp.Diff(reviewed[typ], plain); diff != "" {
			t.Errorf("%s delivers fields nobody reviewed for personal data (-reviewed +delivered):\n%s", typ, diff)
		}
	}
}

// Every case event the schema defines is in the routing table, so that a
// new one is a decision, not an accident.
func TestEveryCaseEventIsRouted(t *testing.T) {
	fd := casev1.File_koers_case_v1_events_proto
	msgs := fd.Messages()
	for i := range msgs.Len() {
		if _, ok := routes[msgs.Get(i).FullName()]; !ok {
			t.Errorf("%s is not in the routing table", msgs.Get(i).FullName())
		}
	}
	if len(routes) != msgs.Len() {
		t.Errorf("the routing table has %d types, events.proto %d", len(routes), msgs.Len())
	}
}
