package casesvc

import (
	"context"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	"github.com/koers-io/koers/services/authz"
)

// caseFacts tells the policy what it needs to know about a case.
func caseFacts(tenant, caseID string, st casework.State) authz.CaseFacts {
	f := authz.CaseFacts{
		Tenant:   tenant,
		CaseID:   caseID,
		CoachID:  st.CoachID,
		AgencyID: st.Reintegration.AgencyID,
	}
	for _, r := range st.Referrals {
		if r.ColleagueCoachID != "" {
			f.ReferredTo = append(f.ReferredTo, r.ColleagueCoachID)
		}
	}
	if f.AgencyID != "" {
		if c, ok := st.Consent(casework.Recipient{Kind: casev1.RecipientKind_RECIPIENT_KIND_AGENCY, ID: f.AgencyID}); ok {
			f.AgencyScopes = c.Scopes
		}
	}
	return f
}

// authorize asks the policy whether the command's caller may act on the
// loaded case. A case that does not exist yet is judged by what the
// opening request says (its coach); for any other command it is left to
// the domain, which answers that it was never opened.
func (s *Service) authorize(ctx context.Context, p prepared, c *loaded) error {
	var f authz.CaseFacts
	switch {
	case c.exists():
		f = caseFacts(c.tenant, p.caseID, c.state)
	case p.opening:
		f = authz.CaseFacts{Tenant: p.principal.Tenant, CaseID: p.caseID, CoachID: p.coachID}
	default:
		return nil
	}
	err := authz.Case(ctx, f)
	if err == authz.ErrNoSuchCase {
		if p.opening {
			return casework.ErrCaseAlreadyOpened
		}
		return casework.ErrCaseNotOpened
	}
	return err
}
