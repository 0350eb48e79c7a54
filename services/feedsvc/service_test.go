package feedsvc_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
	"github.com/koers-io/koers/services/feedsvc"
)

var (
	case1 = uuid.NewString()
	case2 = uuid.NewString()
	case3 = uuid.NewString()
)

// publishMixed fills the feed with events of agency A interleaved with
// events of agency B of the same tenant and of agency A's namesake in
// another tenant, and returns agency A's, in order. Its last event is
// agency A's, so that a subscriber that receives it has seen every
// message before it.
func publishMixed(h *harness) []item {
	var want []item
	for i := range 5 {
		want = append(want, h.publish(h.js, tenantA, agencyA, []string{case1, case2}[i%2], 16))
		h.publish(h.js, tenantA, agencyB, case3, 16)
		h.publish(h.js, tenantB, agencyA, case3, 16)
		h.publish(h.js, tenantB, agencyA, case1, 16)
	}
	return append(want, h.publish(h.js, tenantA, agencyA, case2, 16))
}

func TestAgencyReceivesExactlyItsOwnFeedInOrder(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	want := publishMixed(h)

	got := receive(t, h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{}), len(want))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("agency A's feed (-want +got):\n%s", diff)
	}
}

func TestResponseCarriesTheRoutedEvent(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	sent := h.publish(h.js, tenantA, agencyA, case1, 3)

	resp, err := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{}).Recv()
	if err != nil {
		t.Fatal(err)
	}
	ev := resp.GetEvent()
	if ev.GetId() != sent.EventID || ev.GetStream() != "case-"+case1 || ev.GetType() != "koers.case.v1.ReintegrationCheckpointRecorded" ||
		ev.GetMetadata().GetTenantId() != tenantA || ev.GetMetadata().GetCaseId() != case1 || len(ev.GetData()) != 3 {
		t.Errorf("event = %v, want event %s of case %s of tenant %s with 3 bytes of data", ev, sent.EventID, case1, tenantA)
	}
	if resp.GetCaseId() != case1 || resp.GetResumeToken() != sent.Token {
		t.Errorf("case %q, token %q; want %q, %q", resp.GetCaseId(), resp.GetResumeToken(), case1, sent.Token)
	}
}

func TestFeedsAreSeparatedByAgencyAndTenant(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	all := map[string][]item{}
	for i := range 4 {
		all["agency-a"] = append(all["agency-a"], h.publish(h.js, tenantA, agencyA, case1, 16))
		all["agency-b"] = append(all["agency-b"], h.publish(h.js, tenantA, agencyB, []string{case1, case2}[i%2], 16))
		all["agency-a-other-tenant"] = append(all["agency-a-other-tenant"], h.publish(h.js, tenantB, agencyA, case1, 16))
	}

	for who, want := range all {
		t.Run(who, func(t *testing.T) {
			stream := h.subscribe(testContext(t), h.client(), who, &feedv1.SubscribeRequest{})
			got := receive(t, stream, len(want))
			// A probe published after every other event comes next: no
			// event of another feed slipped in.
			probe := h.publish(h.js, principals[who].Tenant, principals[who].AgencyID, case2, 16)
			got = append(got, receive(t, stream, 1)...)
			if diff := cmp.Diff(append(want, probe), got); diff != "" {
				t.Errorf("feed of %s (-want +got):\n%s", who, diff)
			}
		})
	}
}

func TestResumeFromAnyTokenHasNoGapAndNoRepeat(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	want := publishMixed(h)
	c := h.client()

	for k := range want[:len(want)-1] {
		got := want[: k+1 : k+1]
		got = append(got, receive(t, h.subscribe(testContext(t), c, "agency-a", &feedv1.SubscribeRequest{ResumeToken: want[k].Token}), len(want)-k-1)...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("events up to token %s, then the resumed feed (-want +got):\n%s", want[k].Token, diff)
		}
	}
}

func TestResumeFromTheLastTokenWaitsForNewEvents(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	before := h.publishCases(tenantA, agencyA, []string{case1}, 3)
	stream := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{ResumeToken: before[2].Token})

	after := h.publishCases(tenantA, agencyA, []string{case2}, 2)
	if diff := cmp.Diff(after, receive(t, stream, 2)); diff != "" {
		t.Errorf("events after the last token (-want +got):\n%s", diff)
	}
}

func TestCaseFilterDeliversOnlyThatCase(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	all := publishMixed(h)
	want := ofCase(all, case2)
	c := h.client()

	t.Run("from the start, upper-case ID", func(t *testing.T) {
		got := receive(t, h.subscribe(testContext(t), c, "agency-a", &feedv1.SubscribeRequest{CaseId: strings.ToUpper(case2)}), len(want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("case %s (-want +got):\n%s", case2, diff)
		}
	})
	t.Run("resumed with a token of the full feed", func(t *testing.T) {
		// all[2] is of case1: the case's feed goes on after it.
		var rest []item
		for _, it := range want {
			if it.Position > all[2].Position {
				rest = append(rest, it)
			}
		}
		got := receive(t, h.subscribe(testContext(t), c, "agency-a", &feedv1.SubscribeRequest{CaseId: case2, ResumeToken: all[2].Token}), len(rest))
		if diff := cmp.Diff(rest, got); diff != "" {
			t.Errorf("case %s after token %s (-want +got):\n%s", case2, all[2].Token, diff)
		}
	})
	t.Run("a case of the agency's namesake in another tenant", func(t *testing.T) {
		// case3 has events for agency B and for agency A of tenant B only;
		// the last event proves the stream got that far.
		sentinel := h.publish(h.js, tenantA, agencyA, case3, 16)
		got := receive(t, h.subscribe(testContext(t), c, "agency-a", &feedv1.SubscribeRequest{CaseId: case3}), 1)
		if diff := cmp.Diff([]item{sentinel}, got); diff != "" {
			t.Errorf("case %s (-want +got):\n%s", case3, diff)
		}
	})
}

func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.publishCases(tenantA, agencyA, []string{case1}, 2)
	tests := []struct {
		name  string
		req   *feedv1.SubscribeRequest
		field string
	}{
		{"letters", &feedv1.SubscribeRequest{ResumeToken: "abc"}, "resume_token"},
		{"negative", &feedv1.SubscribeRequest{ResumeToken: "-1"}, "resume_token"},
		{"zero", &feedv1.SubscribeRequest{ResumeToken: "0"}, "resume_token"},
		{"leading zero", &feedv1.SubscribeRequest{ResumeToken: "01"}, "resume_token"},
		{"space", &feedv1.SubscribeRequest{ResumeToken: " 1"}, "resume_token"},
		{"fraction", &feedv1.SubscribeRequest{ResumeToken: "1.5"}, "resume_token"},
		{"past uint64", &feedv1.SubscribeRequest{ResumeToken: "18446744073709551616"}, "resume_token"},
		{"too long", &feedv1.SubscribeRequest{ResumeToken: strings.Repeat("1", 21)}, "resume_token"},
		{"case not a UUID", &feedv1.SubscribeRequest{CaseId: "case-1"}, "case_id"},
		{"case without hyphens", &feedv1.SubscribeRequest{CaseId: strings.ReplaceAll(case1, "-", "")}, "case_id"},
		{"case in braces", &feedv1.SubscribeRequest{CaseId: "{" + case1 + "}"}, "case_id"},
		{"nil case", &feedv1.SubscribeRequest{CaseId: uuid.Nil.String()}, "case_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.subscribeErr("agency-a", tt.req)
			if got := fieldViolations(t, err, codes.InvalidArgument); !cmp.Equal(got, []string{tt.field}) {
				t.Errorf("field violations %v, want [%s] (%v)", got, tt.field, err)
			}
		})
	}
	t.Run("both fields", func(t *testing.T) {
		err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{ResumeToken: "x", CaseId: "y"})
		if got := fieldViolations(t, err, codes.InvalidArgument); !cmp.Equal(got, []string{"resume_token", "case_id"}) {
			t.Errorf("field violations %v, want both fields (%v)", got, err)
		}
	})
	if n := h.consumers(); n != 0 {
		t.Errorf("bad requests left %d consumers on the stream, want 0", n)
	}
}

// fieldViolations checks err's code and returns the fields its
// google.rpc.BadRequest names.
func fieldViolations(t *testing.T, err error, want codes.Code) []string {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("code %s (%v), want %s", st.Code(), err, want)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestTokenOutsideTheKeptFeedIsOutOfRange(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	items := h.publishCases(tenantA, agencyA, []string{case1}, 3)

	if err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{ResumeToken: "1000"}); status.Code(err) != codes.OutOfRange {
		t.Errorf("token past the end: %v, want OutOfRange", err)
	}

	st, err := h.js.Stream(context.Background(), bus.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{ResumeToken: items[0].Token}); status.Code(err) != codes.OutOfRange {
		t.Errorf("token whose next events were purged: %v, want OutOfRange", err)
	}
	// The last token still continues without a gap, as does no token.
	next := h.publish(h.js, tenantA, agencyA, case1, 16)
	for _, tok := range []string{items[2].Token, ""} {
		got := receive(t, h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{ResumeToken: tok}), 1)
		if diff := cmp.Diff([]item{next}, got); diff != "" {
			t.Errorf("after the purge, from token %q (-want +got):\n%s", tok, diff)
		}
	}
}

func TestOnlyAnAgencyHasAFeed(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.publishCases(tenantA, agencyA, []string{case1}, 2)
	tests := []struct {
		who  string
		want codes.Code
	}{
		{"coach", codes.PermissionDenied},
		{"admin-with-agency-id", codes.PermissionDenied},
		{"agency-without-id", codes.PermissionDenied},
		{"", codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			if err := h.subscribeErr(tt.who, &feedv1.SubscribeRequest{}); status.Code(err) != tt.want {
				t.Errorf("Subscribe as %q: %v, want %s", tt.who, err, tt.want)
			}
		})
	}
}

func TestMissingStreamIsUnavailable(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	if err := h.js.DeleteStream(context.Background(), bus.AgencyStreamName); err != nil {
		t.Fatal(err)
	}
	if err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("Subscribe without the stream: %v, want Unavailable", err)
	}
}

func TestBusDownAtStartIsUnavailable(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.startService(bustest.JetStream(t, h.nats), feedsvc.Options{StartTimeout: 500 * time.Millisecond})
	h.nats.Shutdown()

	if err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("Subscribe with NATS down: %v, want Unavailable", err)
	}
}

func TestSubscriptionSurvivesANATSRestart(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	want := h.publishCases(tenantA, agencyA, []string{case1, case2}, 5)
	stream := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{})
	got := receive(t, stream, len(want))

	restarted := bustest.Restart(t, h.nats)
	js := bustest.JetStream(t, restarted)
	for i := range 5 {
		h.publish(js, tenantB, agencyA, case1, 16)
		want = append(want, h.publish(js, tenantA, agencyA, []string{case2, case3}[i%2], 16))
	}
	got = append(got, receive(t, stream, 5)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("feed across the restart (-want +got):\n%s", diff)
	}
}

func TestSlowSubscriberDoesNotHoldUpAnother(t *testing.T) {
	var (
		mu        sync.Mutex
		delivered = map[string]int{}
	)
	h := newHarness(t, feedsvc.Options{
		OnDeliver: func(_ context.Context, p authn.Principal, _ *feedv1.SubscribeResponse) error {
			mu.Lock()
			delivered[p.Subject]++
			mu.Unlock()
			return nil
		},
	})
	const n, size = 300, 4 << 10
	var want []item
	for i := range n {
		want = append(want, h.publish(h.js, tenantA, agencyA, []string{case1, case2}[i%2], size))
	}

	// Fixed windows of 64 KiB: the slow client, which reads nothing, takes
	// in a small part of the 1.2 MiB, and the server is held at that.
	slow := h.subscribe(testContext(t), h.client(grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16)),
		"agency-a-slow", &feedv1.SubscribeRequest{})
	fast := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{})
	if diff := cmp.Diff(want, receive(t, fast, n)); diff != "" {
		t.Errorf("the fast subscriber's feed (-want +got):\n%s", diff)
	}
	mu.Lock()
	held := delivered["agency-a-slow"]
	mu.Unlock()
	if held >= n {
		t.Fatalf("the slow subscriber was handed all %d events without reading; the test did not hold it back", n)
	}

	if diff := cmp.Diff(want, receive(t, slow, n)); diff != "" {
		t.Errorf("the slow subscriber's feed, read afterwards (-want +got):\n%s", diff)
	}
}

func TestClientCancelEndsTheSubscription(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.publishCases(tenantA, agencyA, []string{case1}, 3)
	ctx, cancel := context.WithCancel(testContext(t))
	stream := h.subscribe(ctx, h.client(), "agency-a", &feedv1.SubscribeRequest{})
	receive(t, stream, 3)
	if n := h.consumers(); n != 1 {
		t.Fatalf("a running subscription has %d consumers, want 1", n)
	}

	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("Recv after cancel: %v, want Canceled", err)
	}
	select {
	case err := <-h.ended:
		if status.Code(err) != codes.Canceled {
			t.Errorf("the handler ended with %v, want Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handler did not return after the client cancelled")
	}
	eventually(t, "the subscription's consumer is deleted", func() bool { return h.consumers() == 0 })
}

func TestServerStopEndsTheSubscription(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.publishCases(tenantA, agencyA, []string{case1}, 2)
	stream := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{})
	receive(t, stream, 2)

	h.grpc.Stop()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Recv after the server stopped: %v, want Unavailable", err)
	}
	select {
	case <-h.ended:
	case <-time.After(15 * time.Second):
		t.Fatal("the handler did not return after the server stopped")
	}
	eventually(t, "the subscription's consumer is deleted", func() bool { return h.consumers() == 0 })
}

func TestCloseEndsSubscriptionsWithUnavailable(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	h.publishCases(tenantA, agencyA, []string{case1}, 2)
	stream := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{})
	receive(t, stream, 2)

	h.svc.Close()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Recv after Close: %v, want Unavailable", err)
	}
	if err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("Subscribe after Close: %v, want Unavailable", err)
	}
	eventually(t, "the subscription's consumer is deleted", func() bool { return h.consumers() == 0 })
}

func TestOnSubscribeSeesTheCallAndCanRefuseIt(t *testing.T) {
	type call struct {
		P   authn.Principal
		Req *feedv1.SubscribeRequest
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	refuse := status.Error(codes.PermissionDenied, "the audit trail is not writable")
	h := newHarness(t, feedsvc.Options{
		OnSubscribe: func(_ context.Context, p authn.Principal, req *feedv1.SubscribeRequest) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{p, req})
			return refuse
		},
	})
	req := &feedv1.SubscribeRequest{ResumeToken: "7", CaseId: case1}
	if err := h.subscribeErr("agency-a", req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("refused by OnSubscribe: %v, want its PermissionDenied", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []call{{principals["agency-a"], req}}
	if diff := cmp.Diff(want, calls, protocmp.Transform()); diff != "" {
		t.Errorf("OnSubscribe calls (-want +got):\n%s", diff)
	}
	mu.Unlock()
	err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{ResumeToken: "x"})
	mu.Lock()
	if status.Code(err) != codes.InvalidArgument || len(calls) != 1 {
		t.Errorf("a malformed request: %v, %d hook calls; want InvalidArgument before the hook", err, len(calls))
	}
	if n := h.consumers(); n != 0 {
		t.Errorf("refused calls left %d consumers, want 0", n)
	}
}

func TestHookErrorsThatAreNoStatusAreInternal(t *testing.T) {
	h := newHarness(t, feedsvc.Options{
		OnSubscribe: func(context.Context, authn.Principal, *feedv1.SubscribeRequest) error {
			return errors.New("audit: disk full")
		},
	})
	err := h.subscribeErr("agency-a", &feedv1.SubscribeRequest{})
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "disk full") {
		t.Errorf("plain hook error: %v, want Internal without the details", err)
	}
}

func TestOnDeliverErrorEndsTheStreamBeforeThatEvent(t *testing.T) {
	var seen []string
	h := newHarness(t, feedsvc.Options{
		OnDeliver: func(_ context.Context, _ authn.Principal, resp *feedv1.SubscribeResponse) error {
			if len(seen) == 2 {
				return status.Error(codes.Unavailable, "audit down")
			}
			seen = append(seen, resp.GetResumeToken())
			return nil
		},
	})
	items := h.publishCases(tenantA, agencyA, []string{case1}, 4)
	stream := h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{})
	got := receive(t, stream, 2)
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("third Recv: %v, want the hook's Unavailable", err)
	}
	if diff := cmp.Diff(items[:2], got); diff != "" {
		t.Errorf("delivered before the hook refused (-want +got):\n%s", diff)
	}
}

func TestMalformedFeedMessagesAreSkipped(t *testing.T) {
	h := newHarness(t, feedsvc.Options{})
	first := h.publish(h.js, tenantA, agencyA, case1, 16)
	h.publishRaw(tenantA, agencyA, case1, []byte("not an event"))
	// A well-formed event of tenant B on tenant A's subject: a router bug
	// must not leak it.
	foreign := h.publish(h.js, tenantB, agencyA, case1, 16)
	st, err := h.js.Stream(context.Background(), bus.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(context.Background(), seqOf(t, foreign.Token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.PublishMsg(context.Background(), &nats.Msg{Subject: bus.AgencySubject(tenantA, agencyA, case1), Data: msg.Data}); err != nil {
		t.Fatal(err)
	}
	// An event of case2 on case1's subject.
	other := h.publish(h.js, tenantA, agencyA, case2, 16)
	msg, err = st.GetMsg(context.Background(), seqOf(t, other.Token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.PublishMsg(context.Background(), &nats.Msg{Subject: bus.AgencySubject(tenantA, agencyA, case1), Data: msg.Data}); err != nil {
		t.Fatal(err)
	}
	last := h.publish(h.js, tenantA, agencyA, case1, 16)

	got := receive(t, h.subscribe(testContext(t), h.client(), "agency-a", &feedv1.SubscribeRequest{CaseId: case1}), 2)
	if diff := cmp.Diff([]item{first, last}, got); diff != "" {
		t.Errorf("case %s with malformed messages between (-want +got):\n%s", case1, diff)
	}
}

// seqOf reads a stream sequence back from the token the tests recorded.
func seqOf(t *testing.T, token string) uint64 {
	t.Helper()
	seq, err := strconv.ParseUint(token, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
