package agencyfeed_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/projections"
	"github.com/koers-io/koers/projections/agencyfeed"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The cases of the routing history.
const (
	case1 = "11111111-1111-4111-8111-111111111111"
	case2 = "22222222-2222-4222-8222-222222222222"
	case3 = "33333333-3333-4333-8333-333333333333"
	case4 = "44444444-4444-4444-8444-444444444444"
)

// routingHistory is the history the routing tests apply, and the feed it
// must give, in stream order. Tenant acme has agencies reintegra and
// werkfit; tenant bolt has an agency also named reintegra.
func routingHistory(t testing.TB) (*history, []string) {
	h := &history{}
	acme := func(c string, body proto.Message) { h.add(t, "acme", c, body) }

	// Case 1: reintegra works on it until the client revokes its consent;
	// werkfit takes over until the case closes; then the client's data is
	// erased.
	acme(case1, &casev1.CaseOpened{ClientId: "client-1", Client: sealed("client-1"), BirthYear: 1970, OpenedOn: date(2025, 1, 6)}) // 1
	acme(case1, &casev1.IntakeCompleted{HeldOn: date(2025, 1, 13), Answers: sealed("intake-1"),                                    // 2
		WarningSignals: []casev1.WarningSignal{casev1.WarningSignal_WARNING_SIGNAL_OVERLOAD}, ReferralAdvised: true})
	acme(case1, &casev1.ReintegrationStarted{SickReportedOn: date(2025, 1, 2), Track: casev1.ReintegrationTrack_REINTEGRATION_TRACK_FIRST})                                                // 3
	acme(case1, &casev1.ReportingConsentGranted{Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "org-1"}, Scopes: []casev1.ReportingScope{progress}}) // 4
	acme(case1, agencyConsent("reintegra", reintegration, progress))                                                                                                                       // 5
	acme(case1, &casev1.ReintegrationAgencyAssigned{AgencyId: "reintegra"})                                                                                                                // 6
	acme(case1, &casev1.ReintegrationCheckpointRecorded{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: date(2025, 2, 10),                                           // 7
		LoadCapacity: &casev1.LoadCapacity{Percent: 50, HoursPerWeek: 20, FunctionalCapabilityList: true}, Notes: sealed("checkpoint-notes-1")})
	acme(case1, &casev1.SessionRecorded{HeldOn: date(2025, 2, 12), Kind: casev1.SessionKind_SESSION_KIND_COACHING, DurationMinutes: 60, Notes: sealed("session-notes-1")}) // 8
	acme(case1, &casev1.DevelopmentPlanAgreed{AgreedOn: date(2025, 2, 14), ReviewOn: date(2025, 4, 14), Goals: sealed("goals-1")})                                         // 9
	acme(case1, &casev1.QuestionReclassified{From: casev1.QuestionType_QUESTION_TYPE_CHOICE, To: casev1.QuestionType_QUESTION_TYPE_LIFE,                                   // 10
		Reason: casev1.ReclassificationReason_RECLASSIFICATION_REASON_OTHER, Explanation: sealed("reclassification-1")})
	acme(case1, &casev1.CaseReferred{Target: casev1.ReferralTarget_REFERRAL_TARGET_OUTSIDE_PROFESSIONAL, // 11
		Reason: casev1.ReferralReason_REFERRAL_REASON_WARNING_SIGNALS, Details: sealed("referral-1")})
	acme(case1, agencyConsent("reintegra", reintegration, progress, plan))                                                                                         // 12
	acme(case1, &casev1.DevelopmentPlanRevised{RevisedOn: date(2025, 3, 3), ReviewOn: date(2025, 5, 5), Goals: sealed("goals-2")})                                 // 13
	acme(case1, &casev1.ReportingConsentRevoked{Recipient: &casev1.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_EMPLOYER, Id: "org-1"}})                    // 14
	acme(case1, agencyConsent("werkfit", reintegration))                                                                                                           // 15
	acme(case1, agencyRevoked("reintegra"))                                                                                                                        // 16
	acme(case1, &casev1.ReintegrationAgencyUnassigned{AgencyId: "reintegra", Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CONSENT_REVOKED})  // 17
	acme(case1, &casev1.ReintegrationCheckpointRecorded{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, HeldOn: date(2025, 3, 10)})                       // 18
	acme(case1, &casev1.ReintegrationAgencyAssigned{AgencyId: "werkfit"})                                                                                          // 19
	acme(case1, &casev1.SecondTrackStarted{StartedOn: date(2025, 3, 17)})                                                                                          // 20
	acme(case1, &casev1.SessionRecorded{HeldOn: date(2025, 3, 20), Kind: casev1.SessionKind_SESSION_KIND_TRAINING, DurationMinutes: 90})                           // 21
	acme(case1, &casev1.CaseClosed{Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER, ClosedOn: date(2025, 6, 2), Summary: sealed("summary-1")}) // 22
	acme(case1, &casev1.ReintegrationAgencyUnassigned{AgencyId: "werkfit", Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED})        // 23
	acme(case1, &casev1.ClientDataErased{Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST})                                                              // 24

	// Case 2: werkfit, with outcome, sees the close and its unassignment,
	// and nothing of the reopening.
	acme(case2, &casev1.CaseOpened{ClientId: "client-2", Client: sealed("client-2"), OpenedOn: date(2025, 2, 3)})                                           // 25
	acme(case2, &casev1.ReintegrationStarted{SickReportedOn: date(2025, 1, 20)})                                                                            // 26
	acme(case2, agencyConsent("werkfit", reintegration, outcome))                                                                                           // 27
	acme(case2, &casev1.ReintegrationAgencyAssigned{AgencyId: "werkfit"})                                                                                   // 28
	acme(case2, &casev1.ReintegrationCheckpointRecorded{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN, HeldOn: date(2025, 3, 14)})                // 29
	acme(case2, &casev1.CaseClosed{Outcome: casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER, ClosedOn: date(2025, 5, 1)})                        // 30
	acme(case2, &casev1.ReintegrationAgencyUnassigned{AgencyId: "werkfit", Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_CASE_CLOSED}) // 31
	acme(case2, &casev1.CaseReopened{ReopenedOn: date(2025, 6, 1), Reason: casev1.ReopenReason_REOPEN_REASON_RELAPSE})                                      // 32

	// Case 3: tenant bolt's reintegra, which acme's never hears of.
	h.add(t, "bolt", case3, &casev1.CaseOpened{ClientId: "client-3", OpenedOn: date(2025, 2, 3)})                                                            // 33
	h.add(t, "bolt", case3, &casev1.ReintegrationStarted{SickReportedOn: date(2025, 1, 27)})                                                                 // 34
	h.add(t, "bolt", case3, agencyConsent("reintegra", reintegration))                                                                                       // 35
	h.add(t, "bolt", case3, &casev1.ReintegrationAgencyAssigned{AgencyId: "reintegra"})                                                                      // 36
	h.add(t, "bolt", case3, &casev1.ReintegrationCheckpointRecorded{Kind: casev1.CheckpointKind_CHECKPOINT_KIND_PROBLEM_ANALYSIS, HeldOn: date(2025, 3, 7)}) // 37

	// Case 4: reintegra follows an outplacement to its placement, finishes,
	// and hears of the erasure long after.
	acme(case4, &casev1.CaseOpened{ClientId: "client-4", OpenedOn: date(2025, 2, 3)})                                                                       // 38
	acme(case4, agencyConsent("reintegra", progress, outcome))                                                                                              // 39
	acme(case4, &casev1.ReintegrationStarted{SickReportedOn: date(2025, 1, 27)})                                                                            // 40
	acme(case4, &casev1.ReintegrationAgencyAssigned{AgencyId: "reintegra"})                                                                                 // 41
	acme(case4, &casev1.OutplacementStarted{StartedOn: date(2025, 3, 3), Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_FAREWELL, PlannedMonths: 6})    // 42
	acme(case4, &casev1.OutplacementPhaseEntered{Phase: casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH, EnteredOn: date(2025, 4, 7)})          // 43
	acme(case4, &casev1.PlacementAchieved{Outcome: casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL, PlacedOn: date(2025, 6, 2)})                         // 44
	acme(case4, &casev1.ReintegrationAgencyUnassigned{AgencyId: "reintegra", Reason: casev1.AgencyUnassignmentReason_AGENCY_UNASSIGNMENT_REASON_COMPLETED}) // 45
	acme(case4, &casev1.SessionRecorded{HeldOn: date(2025, 6, 9), Kind: casev1.SessionKind_SESSION_KIND_FOLLOW_UP, DurationMinutes: 30})                    // 46
	acme(case4, &casev1.ClientDataErased{Reason: casev1.ErasureReason_ERASURE_REASON_RETENTION_EXPIRED})                                                    // 47

	// Types the router does not know: one no Go type is registered for (the
	// engine skips it), one registered that is no case event (the router
	// refuses it); then the feed goes on.
	h.addRaw(t, "acme", case4, "koers.case.v1.NotInventedYet", []byte{0x0a, 0x01, 'x'}) // 48
	sealedBytes, _ := proto.Marshal(sealed("not-an-event"))
	h.addRaw(t, "bolt", case3, "koers.event.v1.Sealed", sealedBytes)                 // 49
	h.add(t, "bolt", case3, &casev1.SecondTrackStarted{StartedOn: date(2025, 4, 1)}) // 50

	want := []string{
		"acme/reintegra 6 ReintegrationAgencyAssigned",
		"acme/reintegra 7 ReintegrationCheckpointRecorded",
		"acme/reintegra 8 SessionRecorded",
		"acme/reintegra 12 ReportingConsentGranted",
		"acme/reintegra 13 DevelopmentPlanRevised",
		"acme/reintegra 16 ReportingConsentRevoked",
		"acme/reintegra 17 ReintegrationAgencyUnassigned",
		"acme/werkfit 19 ReintegrationAgencyAssigned",
		"acme/werkfit 20 SecondTrackStarted",
		"acme/werkfit 23 ReintegrationAgencyUnassigned",
		"acme/reintegra 24 ClientDataErased",
		"acme/werkfit 24 ClientDataErased",
		"acme/werkfit 28 ReintegrationAgencyAssigned",
		"acme/werkfit 29 ReintegrationCheckpointRecorded",
		"acme/werkfit 30 CaseClosed",
		"acme/werkfit 31 ReintegrationAgencyUnassigned",
		"bolt/reintegra 36 ReintegrationAgencyAssigned",
		"bolt/reintegra 37 ReintegrationCheckpointRecorded",
		"acme/reintegra 41 ReintegrationAgencyAssigned",
		"acme/reintegra 42 OutplacementStarted",
		"acme/reintegra 43 OutplacementPhaseEntered",
		"acme/reintegra 44 PlacementAchieved",
		"acme/reintegra 45 ReintegrationAgencyUnassigned",
		"acme/reintegra 47 ClientDataErased",
		"bolt/reintegra 50 SecondTrackStarted",
	}
	return h, want
}

func TestAgencyReceivesExactlyItsAssignedConsentedInScopeEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, open func(t *testing.T) *projections.DB) {
		b := newBench(t)
		h, want := routingHistory(t)
		b.publish(t, h)
		b.run(t, open(t), b.router(t), eventstore.Position(len(h.events)))
		got := b.feed(t)
		if diff := cmp.Diff(want, summaries(got)); diff != "" {
			t.Fatalf("agency feed (-want +got):\n%s", diff)
		}
		checkFeedHeaders(t, h, got)
		checkRedacted(t, h, got)
	})
}

// checkFeedHeaders checks the routing headers of each message: the event
// stream's, with the previous position the agency's own previous event's,
// and the message ID on the first copy of an event only.
func checkFeedHeaders(t *testing.T, h *history, msgs []feedMsg) {
	t.Helper()
	previous := map[string]uint64{}
	copies := map[uint64]int{}
	for _, m := range msgs {
		orig := h.events[m.ev.GetPosition()-1]
		agency := m.subject[:strings.LastIndex(m.subject, ".")]
		if got := m.ev.GetPreviousPosition(); got != previous[agency] {
			t.Errorf("%s: previous position %d, want %d, the agency's previous event", summary(m), got, previous[agency])
		}
		previous[agency] = m.ev.GetPosition()
		wantID := []string{orig.ID.String()}
		if copies[m.ev.GetPosition()] > 0 {
			wantID = nil
		}
		copies[m.ev.GetPosition()]++
		if diff := cmp.Diff(wantID, m.header[bus.HeaderMsgID]); diff != "" {
			t.Errorf("%s: Nats-Msg-Id (-want +got):\n%s", summary(m), diff)
		}
		if m.ev.GetId() != orig.ID.String() || m.ev.GetStream() != orig.Stream || m.ev.GetRevision() != orig.Revision ||
			m.header[bus.HeaderEventType][0] != orig.Type || m.header[bus.HeaderPosition][0] != strconv.Itoa(int(orig.Position)) {
			t.Errorf("%s: identity or headers differ from the stored event's", summary(m))
		}
	}
}

// checkRedacted checks that no message carries a sealed value, in its
// bytes or its decoded body, that the envelope is the stored one, and that
// the plain fields in scope are kept.
func checkRedacted(t *testing.T, h *history, msgs []feedMsg) {
	t.Helper()
	for _, m := range msgs {
		if containsSealedBytes(m.data) {
			t.Errorf("%s: the message bytes hold sealed personal data", summary(m))
		}
		if hasSealed(m.body.ProtoReflect()) {
			t.Errorf("%s: the body holds a Sealed value", summary(m))
		}
		orig := h.events[m.ev.GetPosition()-1]
		var meta eventv1.Metadata
		if err := proto.Unmarshal(orig.Metadata, &meta); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&meta, m.ev.GetMetadata(), protocmp.Transform()); diff != "" {
			t.Errorf("%s: metadata (-stored +feed):\n%s", summary(m), diff)
		}
		// The body is the stored one with its sealed fields cleared.
		mt, err := protoregistryFind(orig.Type)
		if err != nil {
			t.Fatal(err)
		}
		want := mt.New().Interface()
		if err := proto.Unmarshal(orig.Data, want); err != nil {
			t.Fatal(err)
		}
		clearSealed(want)
		if diff := cmp.Diff(want, m.body, protocmp.Transform()); diff != "" {
			t.Errorf("%s: body (-stored without sealed fields +feed):\n%s", summary(m), diff)
		}
	}
	// The checkpoint's load capacity is in the REINTEGRATION scope.
	for _, m := range msgs {
		if cp, ok := m.body.(*casev1.ReintegrationCheckpointRecorded); ok && m.ev.GetPosition() == 7 {
			if cp.GetLoadCapacity().GetHoursPerWeek() != 20 || cp.GetNotes() != nil {
				t.Errorf("checkpoint at 7: load capacity %v, notes %v; want 20 hours and no notes", cp.GetLoadCapacity(), cp.GetNotes())
			}
		}
	}
}

// clearSealed clears the Sealed fields the routed events have, by name,
// as a reviewer would: independent of the router's generic walk.
func clearSealed(m proto.Message) {
	switch e := m.(type) {
	case *casev1.ReintegrationCheckpointRecorded:
		e.Notes = nil
	case *casev1.SessionRecorded:
		e.Notes = nil
	case *casev1.DevelopmentPlanAgreed:
		e.Goals = nil
	case *casev1.DevelopmentPlanRevised:
		e.Goals = nil
	case *casev1.CaseClosed:
		e.Summary = nil
	}
}

func TestUnknownEventsAreCountedAndSkipped(t *testing.T) {
	b := newBench(t)
	h, _ := routingHistory(t)
	b.publish(t, h)
	db := openSQLite(t)
	b.run(t, db, b.router(t), eventstore.Position(len(h.events)))
	s, err := b.js.Stream(context.Background(), bus.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	statuses, err := projections.ReadStatus(context.Background(), db, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || statuses[0].Live == nil {
		t.Fatalf("status %+v; want the router's live generation", statuses)
	}
	live := statuses[0].Live
	if live.Position != 50 {
		t.Errorf("router at position %d, want 50", live.Position)
	}
	want := map[string]uint64{"koers.case.v1.NotInventedYet": 1, "koers.event.v1.Sealed": 1}
	if diff := cmp.Diff(want, live.UnknownTypes); diff != "" {
		t.Errorf("unknown events by type (-want +got):\n%s", diff)
	}
	if statuses[0].Name != agencyfeed.Name {
		t.Errorf("status of %q, want %q", statuses[0].Name, agencyfeed.Name)
	}
}
