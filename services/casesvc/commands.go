package casesvc

import (
	"context"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The command RPCs. Each turns its request into a casework command — the
// only place that knows both — and leaves the rest to execute.

// command is what every command request has.
type command interface {
	GetCaseId() string
	GetRequestId() string
}

// spec is one command as execute sees it.
type spec struct {
	// method is the RPC's full name; it is part of the command's digest.
	method string
	req    command
	// opening marks OpenCase: its case may not exist yet, its case ID may
	// be derived, and its client ID names the key that seals.
	opening  bool
	clientID string
	// coachID is the coach OpenCase names, whom the policy asks about.
	coachID string
	// build makes the domain command from the request, sealing personal
	// parts with f's sealer and adding what is wrong to f. It returns the
	// day the command happened in the world, zero when it names none.
	build func(f *form) (casework.Command, casework.Date)
}

// run executes sp and wraps its result in the RPC's response.
func run[R any](ctx context.Context, s *Service, sp spec, wrap func(*casev1.CommandResult) *R) (*R, error) {
	result, err := s.execute(ctx, sp)
	if err != nil {
		return nil, err
	}
	return wrap(result), nil
}

func date(d *casev1.Date) casework.Date { return casework.DateFromProto(d) }

func recipient(r *casev1.Recipient) casework.Recipient {
	return casework.Recipient{Kind: r.GetKind(), ID: r.GetId()}
}

// OpenCase implements casev1.CaseServiceServer.
func (s *Service) OpenCase(ctx context.Context, req *casev1.OpenCaseRequest) (*casev1.OpenCaseResponse, error) {
	sp := spec{method: casev1.CaseService_OpenCase_FullMethodName, req: req, opening: true, clientID: req.GetClientId(), coachID: req.GetCoachId(),
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.OpenCase{
				ClientID:       req.GetClientId(),
				Client:         f.client("client", req.GetClient()),
				BirthYear:      int(req.GetBirthYear()),
				InitiatedBy:    req.GetInitiatedBy(),
				OrganisationID: req.GetOrganisationId(),
				Department:     req.GetDepartment(),
				Context:        req.GetOrganisationalContext(),
				Question:       req.GetOrganisationalQuestion(),
				Aims:           req.GetOrganisationalAims(),
				OpenedOn:       date(req.GetOpenedOn()),
				CoachID:        req.GetCoachId(),
			}
			return c, c.OpenedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.OpenCaseResponse { return &casev1.OpenCaseResponse{Result: r} })
}

// CompleteIntake implements casev1.CaseServiceServer.
func (s *Service) CompleteIntake(ctx context.Context, req *casev1.CompleteIntakeRequest) (*casev1.CompleteIntakeResponse, error) {
	sp := spec{method: casev1.CaseService_CompleteIntake_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.CompleteIntake{
				HeldOn:              date(req.GetHeldOn()),
				QuestionType:        req.GetQuestionType(),
				Answers:             f.answers("answers", req.GetAnswers()),
				WarningSignals:      req.GetWarningSignals(),
				ReferralAdvised:     req.GetReferralAdvised(),
				MobilityWillingness: int(req.GetMobilityWillingness()),
				MobilityCapacity:    int(req.GetMobilityCapacity()),
			}
			return c, c.HeldOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.CompleteIntakeResponse {
		return &casev1.CompleteIntakeResponse{Result: r}
	})
}

// ReclassifyQuestion implements casev1.CaseServiceServer.
func (s *Service) ReclassifyQuestion(ctx context.Context, req *casev1.ReclassifyQuestionRequest) (*casev1.ReclassifyQuestionResponse, error) {
	sp := spec{method: casev1.CaseService_ReclassifyQuestion_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			return casework.ReclassifyQuestion{
				To:          req.GetTo(),
				Reason:      req.GetReason(),
				Explanation: f.note("explanation", req.GetExplanation()),
			}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.ReclassifyQuestionResponse {
		return &casev1.ReclassifyQuestionResponse{Result: r}
	})
}

// AssignCoach implements casev1.CaseServiceServer.
func (s *Service) AssignCoach(ctx context.Context, req *casev1.AssignCoachRequest) (*casev1.AssignCoachResponse, error) {
	sp := spec{method: casev1.CaseService_AssignCoach_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.AssignCoach{CoachID: req.GetCoachId()}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.AssignCoachResponse {
		return &casev1.AssignCoachResponse{Result: r}
	})
}

// ReferCase implements casev1.CaseServiceServer.
func (s *Service) ReferCase(ctx context.Context, req *casev1.ReferCaseRequest) (*casev1.ReferCaseResponse, error) {
	sp := spec{method: casev1.CaseService_ReferCase_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			return casework.ReferCase{
				Target:           req.GetTarget(),
				ColleagueCoachID: req.GetColleagueCoachId(),
				Reason:           req.GetReason(),
				Details:          f.note("details", req.GetDetails()),
			}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.ReferCaseResponse { return &casev1.ReferCaseResponse{Result: r} })
}

// GrantReportingConsent implements casev1.CaseServiceServer.
func (s *Service) GrantReportingConsent(ctx context.Context, req *casev1.GrantReportingConsentRequest) (*casev1.GrantReportingConsentResponse, error) {
	sp := spec{method: casev1.CaseService_GrantReportingConsent_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.GrantReportingConsent{Recipient: recipient(req.GetRecipient()), Scopes: req.GetScopes()}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.GrantReportingConsentResponse {
		return &casev1.GrantReportingConsentResponse{Result: r}
	})
}

// RevokeReportingConsent implements casev1.CaseServiceServer.
func (s *Service) RevokeReportingConsent(ctx context.Context, req *casev1.RevokeReportingConsentRequest) (*casev1.RevokeReportingConsentResponse, error) {
	sp := spec{method: casev1.CaseService_RevokeReportingConsent_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.RevokeReportingConsent{Recipient: recipient(req.GetRecipient())}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.RevokeReportingConsentResponse {
		return &casev1.RevokeReportingConsentResponse{Result: r}
	})
}

// RecordSession implements casev1.CaseServiceServer.
func (s *Service) RecordSession(ctx context.Context, req *casev1.RecordSessionRequest) (*casev1.RecordSessionResponse, error) {
	sp := spec{method: casev1.CaseService_RecordSession_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.RecordSession{
				HeldOn:          date(req.GetHeldOn()),
				Kind:            req.GetKind(),
				DurationMinutes: int(req.GetDurationMinutes()),
				Notes:           f.note("notes", req.GetNotes()),
			}
			return c, c.HeldOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.RecordSessionResponse {
		return &casev1.RecordSessionResponse{Result: r}
	})
}

// AgreeDevelopmentPlan implements casev1.CaseServiceServer.
func (s *Service) AgreeDevelopmentPlan(ctx context.Context, req *casev1.AgreeDevelopmentPlanRequest) (*casev1.AgreeDevelopmentPlanResponse, error) {
	sp := spec{method: casev1.CaseService_AgreeDevelopmentPlan_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.AgreeDevelopmentPlan{
				AgreedOn: date(req.GetAgreedOn()),
				ReviewOn: date(req.GetReviewOn()),
				Goals:    f.goals("goals", req.GetGoals()),
			}
			return c, c.AgreedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.AgreeDevelopmentPlanResponse {
		return &casev1.AgreeDevelopmentPlanResponse{Result: r}
	})
}

// ReviseDevelopmentPlan implements casev1.CaseServiceServer.
func (s *Service) ReviseDevelopmentPlan(ctx context.Context, req *casev1.ReviseDevelopmentPlanRequest) (*casev1.ReviseDevelopmentPlanResponse, error) {
	sp := spec{method: casev1.CaseService_ReviseDevelopmentPlan_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.ReviseDevelopmentPlan{
				RevisedOn: date(req.GetRevisedOn()),
				ReviewOn:  date(req.GetReviewOn()),
				Goals:     f.goals("goals", req.GetGoals()),
			}
			return c, c.RevisedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.ReviseDevelopmentPlanResponse {
		return &casev1.ReviseDevelopmentPlanResponse{Result: r}
	})
}

// StartOutplacement implements casev1.CaseServiceServer.
func (s *Service) StartOutplacement(ctx context.Context, req *casev1.StartOutplacementRequest) (*casev1.StartOutplacementResponse, error) {
	sp := spec{method: casev1.CaseService_StartOutplacement_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.StartOutplacement{
				StartedOn:     date(req.GetStartedOn()),
				Phase:         req.GetPhase(),
				PlannedMonths: int(req.GetPlannedMonths()),
			}
			return c, c.StartedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.StartOutplacementResponse {
		return &casev1.StartOutplacementResponse{Result: r}
	})
}

// EnterOutplacementPhase implements casev1.CaseServiceServer.
func (s *Service) EnterOutplacementPhase(ctx context.Context, req *casev1.EnterOutplacementPhaseRequest) (*casev1.EnterOutplacementPhaseResponse, error) {
	sp := spec{method: casev1.CaseService_EnterOutplacementPhase_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.EnterOutplacementPhase{Phase: req.GetPhase(), EnteredOn: date(req.GetEnteredOn())}
			return c, c.EnteredOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.EnterOutplacementPhaseResponse {
		return &casev1.EnterOutplacementPhaseResponse{Result: r}
	})
}

// RecordPlacement implements casev1.CaseServiceServer.
func (s *Service) RecordPlacement(ctx context.Context, req *casev1.RecordPlacementRequest) (*casev1.RecordPlacementResponse, error) {
	sp := spec{method: casev1.CaseService_RecordPlacement_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.RecordPlacement{Outcome: req.GetOutcome(), PlacedOn: date(req.GetPlacedOn())}
			return c, c.PlacedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.RecordPlacementResponse {
		return &casev1.RecordPlacementResponse{Result: r}
	})
}

// EndOutplacementWithoutPlacement implements casev1.CaseServiceServer.
func (s *Service) EndOutplacementWithoutPlacement(ctx context.Context, req *casev1.EndOutplacementWithoutPlacementRequest) (*casev1.EndOutplacementWithoutPlacementResponse, error) {
	sp := spec{method: casev1.CaseService_EndOutplacementWithoutPlacement_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.EndOutplacementWithoutPlacement{
				EndedOn:     date(req.GetEndedOn()),
				Reason:      req.GetReason(),
				MarketReady: req.GetMarketReady(),
			}
			return c, c.EndedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.EndOutplacementWithoutPlacementResponse {
		return &casev1.EndOutplacementWithoutPlacementResponse{Result: r}
	})
}

// StartReintegration implements casev1.CaseServiceServer.
func (s *Service) StartReintegration(ctx context.Context, req *casev1.StartReintegrationRequest) (*casev1.StartReintegrationResponse, error) {
	sp := spec{method: casev1.CaseService_StartReintegration_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.StartReintegration{SickReportedOn: date(req.GetSickReportedOn()), Track: req.GetTrack()}
			return c, c.SickReportedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.StartReintegrationResponse {
		return &casev1.StartReintegrationResponse{Result: r}
	})
}

// AssignAgency implements casev1.CaseServiceServer.
func (s *Service) AssignAgency(ctx context.Context, req *casev1.AssignAgencyRequest) (*casev1.AssignAgencyResponse, error) {
	sp := spec{method: casev1.CaseService_AssignAgency_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.AssignAgency{AgencyID: req.GetAgencyId()}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.AssignAgencyResponse {
		return &casev1.AssignAgencyResponse{Result: r}
	})
}

// UnassignAgency implements casev1.CaseServiceServer.
func (s *Service) UnassignAgency(ctx context.Context, req *casev1.UnassignAgencyRequest) (*casev1.UnassignAgencyResponse, error) {
	sp := spec{method: casev1.CaseService_UnassignAgency_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.UnassignAgency{AgencyID: req.GetAgencyId(), Reason: req.GetReason()}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.UnassignAgencyResponse {
		return &casev1.UnassignAgencyResponse{Result: r}
	})
}

// RecordCheckpoint implements casev1.CaseServiceServer.
func (s *Service) RecordCheckpoint(ctx context.Context, req *casev1.RecordCheckpointRequest) (*casev1.RecordCheckpointResponse, error) {
	sp := spec{method: casev1.CaseService_RecordCheckpoint_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.RecordCheckpoint{
				Kind:                req.GetKind(),
				HeldOn:              date(req.GetHeldOn()),
				SecondTrackDecision: req.GetSecondTrackDecision(),
				Notes:               f.note("notes", req.GetNotes()),
			}
			if l := req.GetLoadCapacity(); l != nil {
				c.LoadCapacity = &casework.LoadCapacity{
					Percent:                  int(l.GetPercent()),
					HoursPerWeek:             int(l.GetHoursPerWeek()),
					FunctionalCapabilityList: l.GetFunctionalCapabilityList(),
				}
			}
			return c, c.HeldOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.RecordCheckpointResponse {
		return &casev1.RecordCheckpointResponse{Result: r}
	})
}

// StartSecondTrack implements casev1.CaseServiceServer.
func (s *Service) StartSecondTrack(ctx context.Context, req *casev1.StartSecondTrackRequest) (*casev1.StartSecondTrackResponse, error) {
	sp := spec{method: casev1.CaseService_StartSecondTrack_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.StartSecondTrack{StartedOn: date(req.GetStartedOn())}
			return c, c.StartedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.StartSecondTrackResponse {
		return &casev1.StartSecondTrackResponse{Result: r}
	})
}

// CloseCase implements casev1.CaseServiceServer.
func (s *Service) CloseCase(ctx context.Context, req *casev1.CloseCaseRequest) (*casev1.CloseCaseResponse, error) {
	sp := spec{method: casev1.CaseService_CloseCase_FullMethodName, req: req,
		build: func(f *form) (casework.Command, casework.Date) {
			c := casework.CloseCase{
				ClosedOn: date(req.GetClosedOn()),
				Outcome:  req.GetOutcome(),
				Summary:  f.note("summary", req.GetSummary()),
			}
			return c, c.ClosedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.CloseCaseResponse { return &casev1.CloseCaseResponse{Result: r} })
}

// ReopenCase implements casev1.CaseServiceServer.
func (s *Service) ReopenCase(ctx context.Context, req *casev1.ReopenCaseRequest) (*casev1.ReopenCaseResponse, error) {
	sp := spec{method: casev1.CaseService_ReopenCase_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			c := casework.ReopenCase{ReopenedOn: date(req.GetReopenedOn()), Reason: req.GetReason()}
			return c, c.ReopenedOn
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.ReopenCaseResponse { return &casev1.ReopenCaseResponse{Result: r} })
}

// EraseClientData implements casev1.CaseServiceServer. The key is erased
// after the event is stored (see execute and erasure.go).
func (s *Service) EraseClientData(ctx context.Context, req *casev1.EraseClientDataRequest) (*casev1.EraseClientDataResponse, error) {
	sp := spec{method: casev1.CaseService_EraseClientData_FullMethodName, req: req,
		build: func(*form) (casework.Command, casework.Date) {
			return casework.EraseClientData{Reason: req.GetReason()}, casework.Date{}
		}}
	return run(ctx, s, sp, func(r *casev1.CommandResult) *casev1.EraseClientDataResponse {
		return &casev1.EraseClientDataResponse{Result: r}
	})
}
