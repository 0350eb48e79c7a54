package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// caseCmd groups the commands that record and show a client's trajectory
// through the CaseService API of a running Koers.
type caseCmd struct {
	caseConn `embed:""`

	Open               caseOpenCmd               `cmd:"" help:"Open a case: register a client and start their trajectory. Prints the case ID the other commands take."`
	Intake             caseIntakeCmd             `cmd:"" help:"Record the intake: the career question's type, the client's answers, warning signals."`
	Reclassify         caseReclassifyCmd         `cmd:"" help:"Move the career question to another type, with a reason."`
	AssignCoach        caseAssignCoachCmd        `cmd:"" name:"assign-coach" help:"Make a coach the owner of the case."`
	Refer              caseReferCmd              `cmd:"" help:"Refer the case to a colleague (who becomes its coach) or to an outside professional."`
	GrantConsent       caseGrantConsentCmd       `cmd:"" name:"grant-consent" help:"Record the client's consent to reports to an employer or agency."`
	RevokeConsent      caseRevokeConsentCmd      `cmd:"" name:"revoke-consent" help:"End a recipient's reporting consent (an assigned agency is unassigned with it)."`
	Session            caseSessionCmd            `cmd:"" help:"Record a session held with the client."`
	AgreePlan          caseAgreePlanCmd          `cmd:"" name:"agree-plan" help:"Record the personal development plan (POP) agreed after the intake."`
	RevisePlan         caseRevisePlanCmd         `cmd:"" name:"revise-plan" help:"Record a revision of the development plan, with its goals as they are now."`
	StartOutplacement  caseStartOutplacementCmd  `cmd:"" name:"start-outplacement" help:"Start an outplacement (uitstroombegeleiding)."`
	EnterPhase         caseEnterPhaseCmd         `cmd:"" name:"enter-phase" help:"Move the running outplacement to a later phase."`
	Placement          casePlacementCmd          `cmd:"" help:"Record that the client found work (ends the outplacement's search; aftercare may follow)."`
	EndOutplacement    caseEndOutplacementCmd    `cmd:"" name:"end-outplacement" help:"End the running outplacement without a placement."`
	StartReintegration caseStartReintegrationCmd `cmd:"" name:"start-reintegration" help:"Start a re-integration after sick leave (Gatekeeper Act) from the day of the sick report."`
	AssignAgency       caseAssignAgencyCmd       `cmd:"" name:"assign-agency" help:"Put a re-integration agency on the case (needs the client's consent for it)."`
	UnassignAgency     caseUnassignAgencyCmd     `cmd:"" name:"unassign-agency" help:"Take the assigned agency off the case."`
	Checkpoint         caseCheckpointCmd         `cmd:"" help:"Record a statutory re-integration checkpoint (problem analysis, action plan, first-year evaluation, ...)."`
	SecondTrack        caseSecondTrackCmd        `cmd:"" name:"second-track" help:"Start the second track: work with another employer."`
	Close              caseCloseCmd              `cmd:"" help:"Close the case (it then accepts only reopen and erase)."`
	Reopen             caseReopenCmd             `cmd:"" help:"Reopen a closed case."`
	Erase              caseEraseCmd              `cmd:"" help:"Erase the client's personal data for good: their key is destroyed, for every case of the client."`
	Show               caseShowCmd               `cmd:"" help:"Show a case: its current state and its history."`
}

// caseArg is the case a command applies to.
type caseArg struct {
	CaseID string `arg:"" name:"case-id" help:"The case's ID (UUID), as koers case open printed it."`
}

type caseOpenCmd struct {
	CaseID       string                                  `name:"case-id" help:"ID (UUID) for the new case. Default: derived from the request ID, so a retry opens the same case."`
	ClientID     string                                  `name:"client-id" required:"" help:"The client's pseudonymous ID in the practice (never a name or BSN). All cases of one client share their data key."`
	GivenName    string                                  `name:"given-name" help:"The client's given name (stored only encrypted)."`
	FamilyName   string                                  `name:"family-name" help:"The client's family name, with any prefix such as \"van\" (stored only encrypted)."`
	Email        string                                  `help:"The client's e-mail address (stored only encrypted)."`
	Phone        string                                  `help:"The client's telephone number (stored only encrypted)."`
	BirthYear    int32                                   `name:"birth-year" placeholder:"YEAR" help:"The client's year of birth, for age bands in reports."`
	InitiatedBy  enumFlag[casev1.Initiator]              `placeholder:"NAME" name:"initiated-by" default:"client" help:"Who asked for the trajectory: ${Initiator}."`
	Organisation string                                  `help:"The employer's organisation ID (lower-case letters, digits, hyphens); required when the organisation initiated."`
	Department   string                                  `help:"The client's department at the employer."`
	Context      enumFlag[casev1.OrganisationalContext]  `placeholder:"NAME" help:"The employer's situation: ${OrganisationalContext}."`
	Question     enumFlag[casev1.OrganisationalQuestion] `placeholder:"NAME" help:"The employer's named question: ${OrganisationalQuestion}."`
	Aims         []enumFlag[casev1.OrganisationalAim]    `placeholder:"NAME" help:"Further aims of the employer, comma-separated: ${OrganisationalAim}."`
	OpenedOn     dateFlag                                `placeholder:"YYYY-MM-DD" name:"opened-on" help:"The day the client was registered (YYYY-MM-DD); default today."`
	Coach        string                                  `help:"The coach who owns the case from the start."`
}

func (c *caseOpenCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	req := &casev1.OpenCaseRequest{
		CaseId: c.CaseID, ClientId: c.ClientID, BirthYear: c.BirthYear,
		InitiatedBy: c.InitiatedBy.Value, OrganisationId: c.Organisation, Department: c.Department,
		OrganisationalContext: c.Context.Value, OrganisationalQuestion: c.Question.Value,
		OrganisationalAims: enumValues(c.Aims), OpenedOn: c.OpenedOn.orToday(), CoachId: c.Coach,
	}
	if c.GivenName != "" || c.FamilyName != "" || c.Email != "" || c.Phone != "" {
		req.Client = &casev1.ClientDetails{GivenName: c.GivenName, FamilyName: c.FamilyName, Email: c.Email, Phone: c.Phone}
	}
	return command(ctx, conn, out, "opened", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.OpenCaseResponse, error) {
		req.RequestId = rid
		return cl.OpenCase(ctx, req)
	})
}

type caseIntakeCmd struct {
	caseArg
	HeldOn          dateFlag                         `placeholder:"YYYY-MM-DD" name:"held-on" help:"The day of the intake (YYYY-MM-DD); default today."`
	QuestionType    enumFlag[casev1.QuestionType]    `placeholder:"NAME" name:"question-type" required:"" help:"The career question's type: ${QuestionType}."`
	ReasonForComing string                           `name:"reason-for-coming" help:"Why the client came (stored only encrypted)."`
	WhoAmI          string                           `name:"who-am-i" help:"The client's answer to \"Who am I?\" (stored only encrypted)."`
	WhatDoIWant     string                           `name:"what-do-i-want" help:"The answer to \"What do I want?\" (stored only encrypted)."`
	WhatCanIDo      string                           `name:"what-can-i-do" help:"The answer to \"What can I do?\" (stored only encrypted)."`
	WhereDoIFindIt  string                           `name:"where-do-i-find-it" help:"The answer to \"Where do I find it?\" (stored only encrypted)."`
	HowDoIGetThere  string                           `name:"how-do-i-get-there" help:"The answer to \"How do I get there?\" (stored only encrypted)."`
	WarningSignals  []enumFlag[casev1.WarningSignal] `placeholder:"NAME" name:"warning-signals" help:"Warning signals noted, comma-separated: ${WarningSignal}."`
	ReferralAdvised bool                             `name:"referral-advised" help:"The coach advises the client to seek other help first."`
	Willingness     uint32                           `help:"Mobility willingness, 1 (not at all) to 5 (very much); 0 when not assessed."`
	Capacity        uint32                           `help:"Mobility capacity, 1 (hardly) to 5 (fully); 0 when not assessed."`
}

func (c *caseIntakeCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "intake recorded", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.CompleteIntakeResponse, error) {
		return cl.CompleteIntake(ctx, &casev1.CompleteIntakeRequest{
			CaseId: c.CaseID, RequestId: rid, HeldOn: c.HeldOn.orToday(), QuestionType: c.QuestionType.Value,
			Answers: &casev1.IntakeAnswers{ReasonForComing: c.ReasonForComing, WhoAmI: c.WhoAmI, WhatDoIWant: c.WhatDoIWant,
				WhatCanIDo: c.WhatCanIDo, WhereDoIFindIt: c.WhereDoIFindIt, HowDoIGetThere: c.HowDoIGetThere},
			WarningSignals: enumValues(c.WarningSignals), ReferralAdvised: c.ReferralAdvised,
			MobilityWillingness: c.Willingness, MobilityCapacity: c.Capacity,
		})
	})
}

type caseReclassifyCmd struct {
	caseArg
	To          enumFlag[casev1.QuestionType]           `placeholder:"NAME" required:"" help:"The question's new type: ${QuestionType}."`
	Reason      enumFlag[casev1.ReclassificationReason] `placeholder:"NAME" required:"" help:"Why it moved: ${ReclassificationReason}."`
	Explanation string                                  `help:"The coach's explanation; required with reason other (stored only encrypted)."`
}

func (c *caseReclassifyCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "reclassified", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.ReclassifyQuestionResponse, error) {
		return cl.ReclassifyQuestion(ctx, &casev1.ReclassifyQuestionRequest{CaseId: c.CaseID, RequestId: rid,
			To: c.To.Value, Reason: c.Reason.Value, Explanation: c.Explanation})
	})
}

type caseAssignCoachCmd struct {
	caseArg
	Coach string `required:"" help:"The coach's ID."`
}

func (c *caseAssignCoachCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "coach assigned", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.AssignCoachResponse, error) {
		return cl.AssignCoach(ctx, &casev1.AssignCoachRequest{CaseId: c.CaseID, RequestId: rid, CoachId: c.Coach})
	})
}

type caseReferCmd struct {
	caseArg
	Target    enumFlag[casev1.ReferralTarget] `placeholder:"NAME" required:"" help:"To whom: ${ReferralTarget}."`
	Colleague string                          `help:"The colleague's coach ID, with target colleague."`
	Reason    enumFlag[casev1.ReferralReason] `placeholder:"NAME" required:"" help:"Why: ${ReferralReason}."`
	Details   string                          `help:"Who the outside professional is and what was handed over; required with reason other (stored only encrypted)."`
}

func (c *caseReferCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "referred", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.ReferCaseResponse, error) {
		return cl.ReferCase(ctx, &casev1.ReferCaseRequest{CaseId: c.CaseID, RequestId: rid, Target: c.Target.Value,
			ColleagueCoachId: c.Colleague, Reason: c.Reason.Value, Details: c.Details})
	})
}

// recipientFlags name who receives reports.
type recipientFlags struct {
	RecipientKind enumFlag[casev1.RecipientKind] `placeholder:"NAME" name:"recipient-kind" required:"" help:"The kind of recipient: ${RecipientKind}."`
	Recipient     string                         `required:"" help:"The recipient's organisation or agency ID."`
}

func (r recipientFlags) proto() *casev1.Recipient {
	return &casev1.Recipient{Kind: r.RecipientKind.Value, Id: r.Recipient}
}

type caseGrantConsentCmd struct {
	caseArg
	recipientFlags
	Scopes []enumFlag[casev1.ReportingScope] `placeholder:"NAME" required:"" help:"What the recipient may see, comma-separated: ${ReportingScope}."`
}

func (c *caseGrantConsentCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "consent granted", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.GrantReportingConsentResponse, error) {
		return cl.GrantReportingConsent(ctx, &casev1.GrantReportingConsentRequest{CaseId: c.CaseID, RequestId: rid,
			Recipient: c.proto(), Scopes: enumValues(c.Scopes)})
	})
}

type caseRevokeConsentCmd struct {
	caseArg
	recipientFlags
}

func (c *caseRevokeConsentCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "consent revoked", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.RevokeReportingConsentResponse, error) {
		return cl.RevokeReportingConsent(ctx, &casev1.RevokeReportingConsentRequest{CaseId: c.CaseID, RequestId: rid, Recipient: c.proto()})
	})
}

type caseSessionCmd struct {
	caseArg
	HeldOn  dateFlag                     `placeholder:"YYYY-MM-DD" name:"held-on" help:"The day of the session (YYYY-MM-DD); default today."`
	Kind    enumFlag[casev1.SessionKind] `placeholder:"NAME" required:"" help:"What it was for: ${SessionKind}."`
	Minutes uint32                       `placeholder:"MINUTES" required:"" help:"How long it took, 1 to 480 minutes."`
	Notes   string                       `help:"The coach's notes (stored only encrypted)."`
}

func (c *caseSessionCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "session recorded", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.RecordSessionResponse, error) {
		return cl.RecordSession(ctx, &casev1.RecordSessionRequest{CaseId: c.CaseID, RequestId: rid, HeldOn: c.HeldOn.orToday(),
			Kind: c.Kind.Value, DurationMinutes: c.Minutes, Notes: c.Notes})
	})
}

// goalFlags are a development plan's goals.
type goalFlags struct {
	ReviewOn dateFlag `placeholder:"YYYY-MM-DD" name:"review-on" required:"" help:"The day of the next review (YYYY-MM-DD)."`
	Goals    []string `name:"goal" required:"" sep:"none" help:"A goal as DESCRIPTION, or DESCRIPTION|ACTIONS|TARGET-DAY (YYYY-MM-DD); repeat the flag for each goal (stored only encrypted)."`
}

func (g goalFlags) goals() ([]*casev1.DevelopmentGoal, error) {
	out := make([]*casev1.DevelopmentGoal, len(g.Goals))
	for i, s := range g.Goals {
		parts := strings.SplitN(s, "|", 3)
		out[i] = &casev1.DevelopmentGoal{Description: strings.TrimSpace(parts[0])}
		if len(parts) > 1 {
			out[i].Actions = strings.TrimSpace(parts[1])
		}
		if len(parts) > 2 && strings.TrimSpace(parts[2]) != "" {
			d, err := parseDate(strings.TrimSpace(parts[2]))
			if err != nil {
				return nil, fmt.Errorf("--goal %d: target day: %w", i+1, err)
			}
			out[i].TargetOn = d
		}
	}
	return out, nil
}

type caseAgreePlanCmd struct {
	caseArg
	AgreedOn dateFlag `placeholder:"YYYY-MM-DD" name:"agreed-on" help:"The day the plan was agreed (YYYY-MM-DD); default today."`
	goalFlags
}

func (c *caseAgreePlanCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	goals, err := c.goals()
	if err != nil {
		return err
	}
	return command(ctx, conn, out, "plan agreed", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.AgreeDevelopmentPlanResponse, error) {
		return cl.AgreeDevelopmentPlan(ctx, &casev1.AgreeDevelopmentPlanRequest{CaseId: c.CaseID, RequestId: rid,
			AgreedOn: c.AgreedOn.orToday(), ReviewOn: c.ReviewOn.Date, Goals: goals})
	})
}

type caseRevisePlanCmd struct {
	caseArg
	RevisedOn dateFlag `placeholder:"YYYY-MM-DD" name:"revised-on" help:"The day of the revision (YYYY-MM-DD); default today."`
	goalFlags
}

func (c *caseRevisePlanCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	goals, err := c.goals()
	if err != nil {
		return err
	}
	return command(ctx, conn, out, "plan revised", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.ReviseDevelopmentPlanResponse, error) {
		return cl.ReviseDevelopmentPlan(ctx, &casev1.ReviseDevelopmentPlanRequest{CaseId: c.CaseID, RequestId: rid,
			RevisedOn: c.RevisedOn.orToday(), ReviewOn: c.ReviewOn.Date, Goals: goals})
	})
}

type caseStartOutplacementCmd struct {
	caseArg
	StartedOn dateFlag                           `placeholder:"YYYY-MM-DD" name:"started-on" help:"The first day (YYYY-MM-DD); default today."`
	Phase     enumFlag[casev1.OutplacementPhase] `placeholder:"NAME" help:"The phase it starts in (default farewell): ${OutplacementPhase}."`
	Months    uint32                             `placeholder:"MONTHS" help:"The agreed length, 1 to 24 months; 0 when none was agreed."`
}

func (c *caseStartOutplacementCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "outplacement started", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.StartOutplacementResponse, error) {
		return cl.StartOutplacement(ctx, &casev1.StartOutplacementRequest{CaseId: c.CaseID, RequestId: rid,
			StartedOn: c.StartedOn.orToday(), Phase: c.Phase.Value, PlannedMonths: c.Months})
	})
}

type caseEnterPhaseCmd struct {
	caseArg
	Phase     enumFlag[casev1.OutplacementPhase] `placeholder:"NAME" required:"" help:"The phase entered: ${OutplacementPhase} (placement is recorded with koers case placement)."`
	EnteredOn dateFlag                           `placeholder:"YYYY-MM-DD" name:"entered-on" help:"The day it was entered (YYYY-MM-DD); default today."`
}

func (c *caseEnterPhaseCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "phase entered", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.EnterOutplacementPhaseResponse, error) {
		return cl.EnterOutplacementPhase(ctx, &casev1.EnterOutplacementPhaseRequest{CaseId: c.CaseID, RequestId: rid,
			Phase: c.Phase.Value, EnteredOn: c.EnteredOn.orToday()})
	})
}

type casePlacementCmd struct {
	caseArg
	Outcome  enumFlag[casev1.PlacementOutcome] `placeholder:"NAME" required:"" help:"Where the client works now: internal, external or self-employed."`
	PlacedOn dateFlag                          `placeholder:"YYYY-MM-DD" name:"placed-on" help:"The first day of the new work (YYYY-MM-DD); default today."`
}

func (c *casePlacementCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "placement recorded", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.RecordPlacementResponse, error) {
		return cl.RecordPlacement(ctx, &casev1.RecordPlacementRequest{CaseId: c.CaseID, RequestId: rid,
			Outcome: c.Outcome.Value, PlacedOn: c.PlacedOn.orToday()})
	})
}

type caseEndOutplacementCmd struct {
	caseArg
	EndedOn     dateFlag                               `placeholder:"YYYY-MM-DD" name:"ended-on" help:"The last day (YYYY-MM-DD); default today."`
	Reason      enumFlag[casev1.OutplacementEndReason] `placeholder:"NAME" required:"" help:"Why it ended: ${OutplacementEndReason}."`
	MarketReady bool                                   `name:"market-ready" help:"The client can approach the job market on their own."`
}

func (c *caseEndOutplacementCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "outplacement ended", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.EndOutplacementWithoutPlacementResponse, error) {
		return cl.EndOutplacementWithoutPlacement(ctx, &casev1.EndOutplacementWithoutPlacementRequest{CaseId: c.CaseID, RequestId: rid,
			EndedOn: c.EndedOn.orToday(), Reason: c.Reason.Value, MarketReady: c.MarketReady})
	})
}

type caseStartReintegrationCmd struct {
	caseArg
	SickReportedOn dateFlag                            `placeholder:"YYYY-MM-DD" name:"sick-reported-on" required:"" help:"The day of the sick report (YYYY-MM-DD); the statutory deadlines count from it."`
	Track          enumFlag[casev1.ReintegrationTrack] `placeholder:"NAME" help:"The track it starts on (default first): ${ReintegrationTrack}."`
}

func (c *caseStartReintegrationCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "re-integration started", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.StartReintegrationResponse, error) {
		return cl.StartReintegration(ctx, &casev1.StartReintegrationRequest{CaseId: c.CaseID, RequestId: rid,
			SickReportedOn: c.SickReportedOn.Date, Track: c.Track.Value})
	})
}

type caseAssignAgencyCmd struct {
	caseArg
	Agency string `required:"" help:"The agency's ID (lower-case letters, digits, hyphens)."`
}

func (c *caseAssignAgencyCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "agency assigned", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.AssignAgencyResponse, error) {
		return cl.AssignAgency(ctx, &casev1.AssignAgencyRequest{CaseId: c.CaseID, RequestId: rid, AgencyId: c.Agency})
	})
}

type caseUnassignAgencyCmd struct {
	caseArg
	Agency string                                    `required:"" help:"The agency assigned now."`
	Reason enumFlag[casev1.AgencyUnassignmentReason] `placeholder:"NAME" required:"" help:"Why: completed, replaced or other."`
}

func (c *caseUnassignAgencyCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "agency unassigned", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.UnassignAgencyResponse, error) {
		return cl.UnassignAgency(ctx, &casev1.UnassignAgencyRequest{CaseId: c.CaseID, RequestId: rid, AgencyId: c.Agency, Reason: c.Reason.Value})
	})
}

type caseCheckpointCmd struct {
	caseArg
	Kind        enumFlag[casev1.CheckpointKind]      `placeholder:"NAME" required:"" help:"Which checkpoint: ${CheckpointKind}."`
	HeldOn      dateFlag                             `placeholder:"YYYY-MM-DD" name:"held-on" help:"The day it took place (YYYY-MM-DD); default today."`
	LoadPercent *uint32                              `name:"load-percent" placeholder:"PERCENT" help:"Load capacity assessed: share of the contract the client can work, 0 to 100."`
	LoadHours   *uint32                              `name:"load-hours" placeholder:"HOURS" help:"Load capacity assessed: hours per week the client can work, 0 to 60."`
	FML         bool                                 `name:"fml" help:"A functional capability list (FML) was drawn up."`
	Decision    enumFlag[casev1.SecondTrackDecision] `placeholder:"NAME" help:"For second-track-decision: ${SecondTrackDecision}."`
	Notes       string                               `help:"The coach's notes (stored only encrypted)."`
}

func (c *caseCheckpointCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	req := &casev1.RecordCheckpointRequest{CaseId: c.CaseID, Kind: c.Kind.Value, HeldOn: c.HeldOn.orToday(),
		SecondTrackDecision: c.Decision.Value, Notes: c.Notes}
	if c.LoadPercent != nil || c.LoadHours != nil || c.FML {
		if c.LoadPercent == nil || c.LoadHours == nil {
			return errors.New("a load capacity needs both --load-percent and --load-hours")
		}
		req.LoadCapacity = &casev1.LoadCapacity{Percent: *c.LoadPercent, HoursPerWeek: *c.LoadHours, FunctionalCapabilityList: c.FML}
	}
	return command(ctx, conn, out, "checkpoint recorded", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.RecordCheckpointResponse, error) {
		req.RequestId = rid
		return cl.RecordCheckpoint(ctx, req)
	})
}

type caseSecondTrackCmd struct {
	caseArg
	StartedOn dateFlag `placeholder:"YYYY-MM-DD" name:"started-on" help:"The first day of the second track (YYYY-MM-DD); default today."`
}

func (c *caseSecondTrackCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "second track started", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.StartSecondTrackResponse, error) {
		return cl.StartSecondTrack(ctx, &casev1.StartSecondTrackRequest{CaseId: c.CaseID, RequestId: rid, StartedOn: c.StartedOn.orToday()})
	})
}

type caseCloseCmd struct {
	caseArg
	ClosedOn dateFlag                      `placeholder:"YYYY-MM-DD" name:"closed-on" help:"The last day (YYYY-MM-DD); default today."`
	Outcome  enumFlag[casev1.CloseOutcome] `placeholder:"NAME" required:"" help:"How the case ended: ${CloseOutcome}."`
	Summary  string                        `help:"The coach's closing summary; required with outcome other (stored only encrypted)."`
}

func (c *caseCloseCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "closed", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.CloseCaseResponse, error) {
		return cl.CloseCase(ctx, &casev1.CloseCaseRequest{CaseId: c.CaseID, RequestId: rid, ClosedOn: c.ClosedOn.orToday(),
			Outcome: c.Outcome.Value, Summary: c.Summary})
	})
}

type caseReopenCmd struct {
	caseArg
	ReopenedOn dateFlag                      `placeholder:"YYYY-MM-DD" name:"reopened-on" help:"The day (YYYY-MM-DD); default today."`
	Reason     enumFlag[casev1.ReopenReason] `placeholder:"NAME" required:"" help:"Why: ${ReopenReason}."`
}

func (c *caseReopenCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	return command(ctx, conn, out, "reopened", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.ReopenCaseResponse, error) {
		return cl.ReopenCase(ctx, &casev1.ReopenCaseRequest{CaseId: c.CaseID, RequestId: rid, ReopenedOn: c.ReopenedOn.orToday(), Reason: c.Reason.Value})
	})
}

type caseEraseCmd struct {
	caseArg
	Reason enumFlag[casev1.ErasureReason] `placeholder:"NAME" required:"" help:"Why: ${ErasureReason}."`
	Yes    bool                           `help:"Confirm: the client's personal data in every one of their cases becomes unreadable for good."`
}

func (c *caseEraseCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	if !c.Yes {
		return errors.New("erasure cannot be undone; add --yes to confirm")
	}
	return command(ctx, conn, out, "client data erased", func(ctx context.Context, cl casev1.CaseServiceClient, rid string) (*casev1.EraseClientDataResponse, error) {
		return cl.EraseClientData(ctx, &casev1.EraseClientDataRequest{CaseId: c.CaseID, RequestId: rid, Reason: c.Reason.Value})
	})
}

type caseShowCmd struct {
	caseArg
}

func (c *caseShowCmd) Run(ctx context.Context, conn *caseConn, out io.Writer) error {
	client, ctx, done, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: c.CaseID})
	if err != nil {
		return describe(err)
	}
	if conn.JSON {
		return printJSON(out, resp)
	}
	return render(out, resp)
}
