package agencyfeed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/projections"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// rule says which agencies an event type may go to.
type rule int

const (
	// never: the event goes to no agency.
	never rule = iota
	// scoped: the event goes to the assigned agency when its consent has
	// the rule's scope.
	scoped
	// own: the event is about an agency itself (its assignment or its
	// consent) and goes to that agency while it is assigned.
	own
	// formerAgencies: the event goes to every agency that ever had the
	// case.
	formerAgencies
)

// route is how one event type is routed.
type route struct {
	rule  rule
	scope casev1.ReportingScope
}

// routes names every case event the router handles; the package doc
// explains the choices. An event type missing here is unknown to the
// router.
var routes = map[protoreflect.FullName]route{
	name(&casev1.CaseOpened{}):           {rule: never},
	name(&casev1.IntakeCompleted{}):      {rule: never},
	name(&casev1.QuestionReclassified{}): {rule: never},
	name(&casev1.CoachAssigned{}):        {rule: never},
	name(&casev1.CaseReferred{}):         {rule: never},
	name(&casev1.CaseReopened{}):         {rule: never},

	name(&casev1.ReportingConsentGranted{}):       {rule: own},
	name(&casev1.ReportingConsentRevoked{}):       {rule: own},
	name(&casev1.ReintegrationAgencyAssigned{}):   {rule: own},
	name(&casev1.ReintegrationAgencyUnassigned{}): {rule: own},

	name(&casev1.ReintegrationStarted{}):            {scoped, casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION},
	name(&casev1.ReintegrationCheckpointRecorded{}): {scoped, casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION},
	name(&casev1.SecondTrackStarted{}):              {scoped, casev1.ReportingScope_REPORTING_SCOPE_REINTEGRATION},

	name(&casev1.PlacementAchieved{}):                 {scoped, casev1.ReportingScope_REPORTING_SCOPE_OUTCOME},
	name(&casev1.OutplacementEndedWithoutPlacement{}): {scoped, casev1.ReportingScope_REPORTING_SCOPE_OUTCOME},
	name(&casev1.CaseClosed{}):                        {scoped, casev1.ReportingScope_REPORTING_SCOPE_OUTCOME},

	name(&casev1.SessionRecorded{}):          {scoped, casev1.ReportingScope_REPORTING_SCOPE_PROGRESS},
	name(&casev1.OutplacementStarted{}):      {scoped, casev1.ReportingScope_REPORTING_SCOPE_PROGRESS},
	name(&casev1.OutplacementPhaseEntered{}): {scoped, casev1.ReportingScope_REPORTING_SCOPE_PROGRESS},

	name(&casev1.DevelopmentPlanAgreed{}):  {scoped, casev1.ReportingScope_REPORTING_SCOPE_DEVELOPMENT_PLAN},
	name(&casev1.DevelopmentPlanRevised{}): {scoped, casev1.ReportingScope_REPORTING_SCOPE_DEVELOPMENT_PLAN},

	name(&casev1.ClientDataErased{}): {rule: formerAgencies},
}

func name(m proto.Message) protoreflect.FullName { return m.ProtoReflect().Descriptor().FullName() }

// Apply updates the routing tables for one case event and publishes the
// event, redacted, to the agencies it goes to. It returns
// projections.ErrUnknownEvent for anything but the case events in routes.
func (r *Router) Apply(ctx context.Context, tx projections.Tx, ev projections.Event) (err error) {
	if ev.Body == nil {
		return projections.ErrUnknownEvent
	}
	rt, ok := routes[name(ev.Body)]
	if !ok {
		return projections.ErrUnknownEvent
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("agencyfeed: %s at position %d of case %s: %w", ev.Type, ev.Position, ev.Metadata.GetCaseId(), err)
		}
	}()
	tenant, caseID := ev.Metadata.GetTenantId(), ev.Metadata.GetCaseId()
	if tenant == "" || caseID == "" {
		return errors.New("the event's metadata names no tenant or case")
	}
	c, err := loadCase(ctx, tx, caseID, tenant)
	if err != nil {
		return err
	}
	before := c
	agencies, err := decide(ctx, tx, &c, ev, rt)
	if err != nil {
		return err
	}
	if c != before || !c.stored {
		if err := saveCase(ctx, tx, c); err != nil {
			return err
		}
	}
	if len(agencies) == 0 {
		return nil
	}
	return r.pub.publish(ctx, ev, deliveries(tenant, caseID, agencies))
}

// caseRow is a row of {cases}.
type caseRow struct {
	id, tenant, agency string
	stored             bool
}

func loadCase(ctx context.Context, tx projections.Tx, caseID, tenant string) (caseRow, error) {
	c := caseRow{id: caseID}
	err := tx.QueryRowContext(ctx, `SELECT tenant_id, agency_id FROM {cases} WHERE case_id = ?`, caseID).Scan(&c.tenant, &c.agency)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		c.tenant = tenant
		return c, nil
	case err != nil:
		return c, fmt.Errorf("loading the case: %w", err)
	case c.tenant != tenant:
		return c, fmt.Errorf("the case belongs to tenant %q, the event to %q", c.tenant, tenant)
	}
	c.stored = true
	return c, nil
}

func saveCase(ctx context.Context, tx projections.Tx, c caseRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO {cases} (case_id, tenant_id, agency_id) VALUES (?, ?, ?)
		ON CONFLICT (case_id) DO UPDATE SET agency_id = excluded.agency_id`, c.id, c.tenant, c.agency)
	if err != nil {
		return fmt.Errorf("saving the case: %w", err)
	}
	return nil
}

// decide applies the event's change to the case's assignment and
// consents, and returns the agencies the event goes to.
func decide(ctx context.Context, tx projections.Tx, c *caseRow, ev projections.Event, rt route) ([]string, error) {
	switch e := ev.Body.(type) {
	case *casev1.ReportingConsentGranted:
		return consentGranted(ctx, tx, c, e)
	case *casev1.ReportingConsentRevoked:
		return consentRevoked(ctx, tx, c, e)
	case *casev1.ReintegrationAgencyAssigned:
		return assigned(ctx, tx, c, e, ev)
	case *casev1.ReintegrationAgencyUnassigned:
		was := c.agency
		c.agency = ""
		if was != "" && was == e.GetAgencyId() {
			return []string{was}, nil
		}
		return nil, nil
	}
	switch rt.rule {
	case formerAgencies:
		return formerAgenciesOf(ctx, tx, c.id)
	case scoped:
		if c.agency == "" {
			return nil, nil
		}
		scopes, ok, err := consentOf(ctx, tx, c.id, c.agency)
		if err != nil || !ok || !scopes.has(rt.scope) {
			return nil, err
		}
		return []string{c.agency}, nil
	}
	return nil, nil
}

func consentGranted(ctx context.Context, tx projections.Tx, c *caseRow, e *casev1.ReportingConsentGranted) ([]string, error) {
	agency, ok := agencyOf(e.GetRecipient())
	if !ok {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO {consents} (case_id, agency_id, scopes) VALUES (?, ?, ?)
		ON CONFLICT (case_id, agency_id) DO UPDATE SET scopes = excluded.scopes`,
		c.id, agency, int64(scopesOf(e.GetScopes()))); err != nil {
		return nil, fmt.Errorf("saving the consent: %w", err)
	}
	if c.agency == agency {
		return []string{agency}, nil
	}
	return nil, nil
}

func consentRevoked(ctx context.Context, tx projections.Tx, c *caseRow, e *casev1.ReportingConsentRevoked) ([]string, error) {
	agency, ok := agencyOf(e.GetRecipient())
	if !ok {
		return nil, nil
	}
	_, had, err := consentOf(ctx, tx, c.id, agency)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM {consents} WHERE case_id = ? AND agency_id = ?`, c.id, agency); err != nil {
		return nil, fmt.Errorf("deleting the consent: %w", err)
	}
	if had && c.agency == agency {
		return []string{agency}, nil
	}
	return nil, nil
}

func assigned(ctx context.Context, tx projections.Tx, c *caseRow, e *casev1.ReintegrationAgencyAssigned, ev projections.Event) ([]string, error) {
	agency := e.GetAgencyId()
	if agency == "" {
		return nil, errors.New("the assignment names no agency")
	}
	c.agency = agency
	if _, err := tx.ExecContext(ctx, `INSERT INTO {agencies} (case_id, agency_id, first_assigned) VALUES (?, ?, ?)
		ON CONFLICT (case_id, agency_id) DO NOTHING`, c.id, agency, int64(ev.Position)); err != nil {
		return nil, fmt.Errorf("recording the assignment: %w", err)
	}
	// casework assigns only with consent; without it the agency is
	// assigned but receives nothing, this event included.
	if _, ok, err := consentOf(ctx, tx, c.id, agency); err != nil || !ok {
		return nil, err
	}
	return []string{agency}, nil
}

func formerAgenciesOf(ctx context.Context, tx projections.Tx, caseID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT agency_id FROM {agencies} WHERE case_id = ?`, caseID)
	if err != nil {
		return nil, fmt.Errorf("reading the case's agencies: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("reading the case's agencies: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the case's agencies: %w", err)
	}
	return out, nil
}

// agencyOf returns the agency a consent's recipient is, if it is one.
func agencyOf(r *casev1.Recipient) (string, bool) {
	if r.GetKind() != casev1.RecipientKind_RECIPIENT_KIND_AGENCY || r.GetId() == "" {
		return "", false
	}
	return r.GetId(), true
}

// scopeSet is a set of reporting scopes, bit n for scope n.
type scopeSet uint64

func scopesOf(scopes []casev1.ReportingScope) scopeSet {
	var s scopeSet
	for _, sc := range scopes {
		if sc > 0 && sc < 63 {
			s |= 1 << uint(sc)
		}
	}
	return s
}

func (s scopeSet) has(sc casev1.ReportingScope) bool {
	return sc > 0 && sc < 63 && s&(1<<uint(sc)) != 0
}

// consentOf returns the scopes the client granted agency in the case, and
// whether it has consent at all.
func consentOf(ctx context.Context, tx projections.Tx, caseID, agency string) (scopeSet, bool, error) {
	var scopes int64
	err := tx.QueryRowContext(ctx, `SELECT scopes FROM {consents} WHERE case_id = ? AND agency_id = ?`, caseID, agency).Scan(&scopes)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reading the consent: %w", err)
	}
	return scopeSet(scopes), true, nil
}

// delivery is one copy of an event for one agency.
type delivery struct {
	tenant, agency, subject string
}

// deliveries returns the copies of an event of case caseID for agencies,
// in subject order: the order the publisher keeps, so that it can tell
// which copies of an event the stream already holds.
func deliveries(tenant, caseID string, agencies []string) []delivery {
	out := make([]delivery, 0, len(agencies))
	for _, a := range agencies {
		out = append(out, delivery{tenant: tenant, agency: a, subject: bus.AgencySubject(tenant, a, caseID)})
	}
	slices.SortFunc(out, func(a, b delivery) int { return strings.Compare(a.subject, b.subject) })
	return slices.CompactFunc(out, func(a, b delivery) bool { return a.subject == b.subject })
}
