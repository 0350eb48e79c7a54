package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/services/authn"
)

// tokenCmd mints a development token with the local issuer of a data
// folder: the issuer a koers serve on its defaults trusts.
type tokenCmd struct {
	Data           string        `help:"Data folder of the koers serve that is to accept the token; its local development issuer (in auth/, created if missing) signs it." default:"./koers-data" type:"path"`
	Role           []string      `help:"Role of the token: integration, coach, admin, employer, analyst or agency. Repeat the flag or separate roles with commas for several." required:"" sep:","`
	Tenant         string        `help:"Tenant (mobility centre) the token acts for: lower-case letters, digits and hyphens." default:"demo"`
	Subject        string        `help:"Who acts (the token's sub, recorded as the actor of what the token's calls record), never a client's name. Default: the coach ID for a coach, else the first role's name, with the organisation or agency ID for an employer or agency."`
	CoachID        string        `name:"coach-id" help:"Coach the token speaks for; required with --role coach, and only then."`
	OrganisationID string        `name:"organisation-id" help:"Employer (organisation) the token speaks for: lower-case letters, digits and hyphens; required with --role employer, and only then."`
	AgencyID       string        `name:"agency-id" help:"Re-integration agency the token speaks for: lower-case letters, digits and hyphens; required with --role agency, and only then."`
	TTL            time.Duration `name:"ttl" help:"How long the token is valid." default:"8h"`
}

// Run prints the token alone on out, so that
// export KOERS_TOKEN=$(koers token ...) works.
func (c *tokenCmd) Run(log *slog.Logger, out io.Writer) error {
	p, err := c.principal()
	if err != nil {
		return err
	}
	if c.TTL <= 0 {
		return fmt.Errorf("--ttl %s must be positive", c.TTL)
	}
	if _, err := os.Stat(c.Data); errors.Is(err, fs.ErrNotExist) {
		log.Warn("the data folder does not exist yet; a koers serve accepts the token only when it runs on this folder", "data", c.Data)
	}
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(c.Data), true)
	if err != nil {
		return err
	}
	token, err := issuer.Mint(p, c.TTL)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, token); err != nil {
		return err
	}
	log.Info("minted a development token", "subject", p.Subject, "tenant", p.Tenant, "roles", c.Role,
		"expires", time.Now().Add(c.TTL).Round(time.Second).Format(time.RFC3339), "issuer", issuer.Dir())
	return nil
}

// principal is who the flags say the token is for, checked flag by flag
// before any key is created.
func (c *tokenCmd) principal() (authn.Principal, error) {
	p := authn.Principal{
		Tenant:         c.Tenant,
		CoachID:        c.CoachID,
		OrganisationID: c.OrganisationID,
		AgencyID:       c.AgencyID,
	}
	for _, name := range c.Role {
		r := authn.Role(strings.TrimSpace(name))
		if !r.Valid() {
			return authn.Principal{}, fmt.Errorf("--role %q is not one of %s", name, roleNames())
		}
		if slices.Contains(p.Roles, r) {
			return authn.Principal{}, fmt.Errorf("--role %s is given twice", r)
		}
		p.Roles = append(p.Roles, r)
	}
	if len(p.Roles) == 0 {
		return authn.Principal{}, fmt.Errorf("--role is empty; give one of %s", roleNames())
	}
	if !authn.ValidTenant(p.Tenant) {
		return authn.Principal{}, fmt.Errorf("--tenant %q must be 1 to %d lower-case letters, digits and hyphens", p.Tenant, authn.MaxTenantLength)
	}
	if err := checkPartyFlags(p); err != nil {
		return authn.Principal{}, err
	}
	p.Subject = c.Subject
	if p.Subject == "" {
		p.Subject = defaultSubject(p)
	}
	if !authn.ValidActor(p.Subject) {
		return authn.Principal{}, fmt.Errorf("--subject %q must be 1 to %d printable characters without spaces", p.Subject, authn.MaxActorLength)
	}
	return p, nil
}

// checkPartyFlags checks the ID flag that goes with each role.
func checkPartyFlags(p authn.Principal) error {
	for _, f := range []struct {
		role  authn.Role
		flag  string
		id    string
		valid func(string) bool
		form  string
	}{
		{authn.RoleCoach, "--coach-id", p.CoachID, authn.ValidActor, fmt.Sprintf("1 to %d printable characters without spaces", authn.MaxActorLength)},
		{authn.RoleEmployer, "--organisation-id", p.OrganisationID, authn.ValidPartyID, fmt.Sprintf("1 to %d lower-case letters, digits and hyphens", authn.MaxPartyIDLength)},
		{authn.RoleAgency, "--agency-id", p.AgencyID, authn.ValidPartyID, fmt.Sprintf("1 to %d lower-case letters, digits and hyphens", authn.MaxPartyIDLength)},
	} {
		has := p.Has(f.role)
		switch {
		case has && f.id == "":
			return fmt.Errorf("--role %s needs %s", f.role, f.flag)
		case !has && f.id != "":
			return fmt.Errorf("%s is only for --role %s", f.flag, f.role)
		case has && !f.valid(f.id):
			return fmt.Errorf("%s %q must be %s", f.flag, f.id, f.form)
		}
	}
	return nil
}

// defaultSubject names the principal after its first role: a coach by
// their coach ID, an employer's HR and an agency by their organisation.
func defaultSubject(p authn.Principal) string {
	switch r := p.Roles[0]; r {
	case authn.RoleCoach:
		return p.CoachID
	case authn.RoleEmployer:
		return "employer-" + p.OrganisationID
	case authn.RoleAgency:
		return "agency-" + p.AgencyID
	default:
		return string(r)
	}
}

func roleNames() string {
	names := make([]string, len(authn.Roles))
	for i, r := range authn.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}
