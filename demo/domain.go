package demo

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// The generator keeps each case's casework.State as it writes the case's
// commands: every request is decided by the domain's own rules before it
// becomes a step, so a trajectory the server would refuse is a generator
// bug found without a server, and the summary reads stages, outcomes and
// deadlines from the same state the server will hold.

// Request is a CaseService command request.
type Request interface {
	proto.Message
	GetCaseId() string
	GetRequestId() string
}

// demoKeyID stands for the client's data key: the domain checks only that
// every sealed part of a case uses the key its opening used.
const demoKeyID = "demo-client-key"

// sealed stands for an encrypted personal part: right in shape, with no
// content, since the domain never opens one.
func sealed(present bool) *eventv1.Sealed {
	if !present {
		return nil
	}
	return &eventv1.Sealed{KeyId: demoKeyID, Nonce: make([]byte, 12), Ciphertext: make([]byte, 16)}
}

func day(d *casev1.Date) casework.Date { return casework.DateFromProto(d) }

func recipient(r *casev1.Recipient) casework.Recipient {
	return casework.Recipient{Kind: r.GetKind(), ID: r.GetId()}
}

// domainCommand turns a request into the casework command the service
// decides for it, as services/casesvc builds it.
func domainCommand(req Request) (casework.Command, error) {
	switch r := req.(type) {
	case *casev1.OpenCaseRequest:
		return casework.OpenCase{
			ClientID: r.GetClientId(), Client: sealed(r.GetClient() != nil), BirthYear: int(r.GetBirthYear()),
			InitiatedBy: r.GetInitiatedBy(), OrganisationID: r.GetOrganisationId(), Department: r.GetDepartment(),
			Context: r.GetOrganisationalContext(), Question: r.GetOrganisationalQuestion(), Aims: r.GetOrganisationalAims(),
			OpenedOn: day(r.GetOpenedOn()), CoachID: r.GetCoachId(),
		}, nil
	case *casev1.CompleteIntakeRequest:
		return casework.CompleteIntake{
			HeldOn: day(r.GetHeldOn()), QuestionType: r.GetQuestionType(), Answers: sealed(r.GetAnswers() != nil),
			WarningSignals: r.GetWarningSignals(), ReferralAdvised: r.GetReferralAdvised(),
			MobilityWillingness: int(r.GetMobilityWillingness()), MobilityCapacity: int(r.GetMobilityCapacity()),
		}, nil
	case *casev1.ReclassifyQuestionRequest:
		return casework.ReclassifyQuestion{To: r.GetTo(), Reason: r.GetReason(), Explanation: sealed(r.GetExplanation() != "")}, nil
	case *casev1.AssignCoachRequest:
		return casework.AssignCoach{CoachID: r.GetCoachId()}, nil
	case *casev1.ReferCaseRequest:
		return casework.ReferCase{Target: r.GetTarget(), ColleagueCoachID: r.GetColleagueCoachId(), Reason: r.GetReason(),
			Details: sealed(r.GetDetails() != "")}, nil
	case *casev1.GrantReportingConsentRequest:
		return casework.GrantReportingConsent{Recipient: recipient(r.GetRecipient()), Scopes: r.GetScopes()}, nil
	case *casev1.RevokeReportingConsentRequest:
		return casework.RevokeReportingConsent{Recipient: recipient(r.GetRecipient())}, nil
	case *casev1.RecordSessionRequest:
		return casework.RecordSession{HeldOn: day(r.GetHeldOn()), Kind: r.GetKind(), DurationMinutes: int(r.GetDurationMinutes()),
			Notes: sealed(r.GetNotes() != "")}, nil
	case *casev1.AgreeDevelopmentPlanRequest:
		return casework.AgreeDevelopmentPlan{AgreedOn: day(r.GetAgreedOn()), ReviewOn: day(r.GetReviewOn()), Goals: sealed(len(r.GetGoals()) > 0)}, nil
	case *casev1.ReviseDevelopmentPlanRequest:
		return casework.ReviseDevelopmentPlan{RevisedOn: day(r.GetRevisedOn()), ReviewOn: day(r.GetReviewOn()), Goals: sealed(len(r.GetGoals()) > 0)}, nil
	default:
		return trajectoryCommand(req)
	}
}

// trajectoryCommand covers the outplacement, re-integration and end of a
// case.
func trajectoryCommand(req Request) (casework.Command, error) {
	switch r := req.(type) {
	case *casev1.StartOutplacementRequest:
		return casework.StartOutplacement{StartedOn: day(r.GetStartedOn()), Phase: r.GetPhase(), PlannedMonths: int(r.GetPlannedMonths())}, nil
	case *casev1.EnterOutplacementPhaseRequest:
		return casework.EnterOutplacementPhase{Phase: r.GetPhase(), EnteredOn: day(r.GetEnteredOn())}, nil
	case *casev1.RecordPlacementRequest:
		return casework.RecordPlacement{Outcome: r.GetOutcome(), PlacedOn: day(r.GetPlacedOn())}, nil
	case *casev1.EndOutplacementWithoutPlacementRequest:
		return casework.EndOutplacementWithoutPlacement{EndedOn: day(r.GetEndedOn()), Reason: r.GetReason(), MarketReady: r.GetMarketReady()}, nil
	case *casev1.StartReintegrationRequest:
		return casework.StartReintegration{SickReportedOn: day(r.GetSickReportedOn()), Track: r.GetTrack()}, nil
	case *casev1.AssignAgencyRequest:
		return casework.AssignAgency{AgencyID: r.GetAgencyId()}, nil
	case *casev1.UnassignAgencyRequest:
		return casework.UnassignAgency{AgencyID: r.GetAgencyId(), Reason: r.GetReason()}, nil
	case *casev1.RecordCheckpointRequest:
		var load *casework.LoadCapacity
		if l := r.GetLoadCapacity(); l != nil {
			load = &casework.LoadCapacity{Percent: int(l.GetPercent()), HoursPerWeek: int(l.GetHoursPerWeek()), FunctionalCapabilityList: l.GetFunctionalCapabilityList()}
		}
		return casework.RecordCheckpoint{Kind: r.GetKind(), HeldOn: day(r.GetHeldOn()), LoadCapacity: load,
			SecondTrackDecision: r.GetSecondTrackDecision(), Notes: sealed(r.GetNotes() != "")}, nil
	case *casev1.StartSecondTrackRequest:
		return casework.StartSecondTrack{StartedOn: day(r.GetStartedOn())}, nil
	case *casev1.CloseCaseRequest:
		return casework.CloseCase{ClosedOn: day(r.GetClosedOn()), Outcome: r.GetOutcome(), Summary: sealed(r.GetSummary() != "")}, nil
	case *casev1.ReopenCaseRequest:
		return casework.ReopenCase{ReopenedOn: day(r.GetReopenedOn()), Reason: r.GetReason()}, nil
	case *casev1.EraseClientDataRequest:
		return casework.EraseClientData{Reason: r.GetReason()}, nil
	}
	return nil, fmt.Errorf("demo: no domain command for %T", req)
}

// decide applies req to the case's state as the server would, and returns
// the state after it.
func decide(s casework.State, req Request) (casework.State, error) {
	cmd, err := domainCommand(req)
	if err != nil {
		return s, err
	}
	events, err := casework.Decide(s, cmd)
	if err != nil {
		return s, err
	}
	for _, e := range events {
		s = casework.Evolve(s, e)
	}
	return s, nil
}
