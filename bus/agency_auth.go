package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// InternalUser is the user Koers' own connections log in as when the
// embedded server requires authentication.
const InternalUser = "koers"

// ErrBadAgencyUser is wrapped by StartEmbedded's errors for agency users
// it cannot configure.
var ErrBadAgencyUser = errors.New("bus: bad agency user")

// AgencyUser is the NATS user of one re-integration agency of a tenant,
// on the embedded server (EmbeddedConfig.AgencyUsers).
//
// An agency that prefers NATS to FeedService reads its feed through the
// one durable pull consumer Koers made for it (AgencyConsumerName,
// filtered on AgencyFilter; see EnsureAgencyConsumer). Two walls keep it
// to that:
//
//   - Each agency's users live in a NATS account of their own, which holds
//     no streams and sees nothing of Koers' account but four subjects
//     exported to it alone: its consumer's info and next-message requests,
//     and the acknowledgements of its consumer's messages. NATS delivers
//     the replies to those requests inside the agency's account. In a
//     shared account that would not hold: a NATS server does not check a
//     request's reply subject against the requester's permissions, so a
//     next-message request with reply subject koers.events.x would have
//     the consumer deliver into the event stream, and any JetStream
//     request would have the server answer there.
//   - Within its account the user may publish only those four subjects and
//     subscribe only below its inbox prefix (AgencyPermissions): an allow
//     list, so that anything else (the event stream, other agencies'
//     subjects and consumers, _INBOX.>, creating or deleting consumers) is
//     refused by the server as a permissions violation.
//
// Agencies cannot create consumers, not even with the filter pinned in
// the subject ($JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>): the
// request's body may name a deliver subject, and nats-server 2.15 delivers
// a push consumer's messages there without checking that the creator may
// publish to it (nats-io/nats-server#8274).
//
// Koers itself connects as InternalUser, with all permissions, in the
// server's global account, where JetStream and the streams are.
type AgencyUser struct {
	// Tenant and Agency are the tenant's and the agency's IDs: lower-case
	// letters, digits and hyphens, 1 to 63 characters each.
	Tenant, Agency string
	// Username is the name the agency logs in with; unique on the server
	// and never InternalUser.
	Username string
	// Password is the agency's password, or its bcrypt hash ("$2a$…",
	// as `nats server passwd` makes), which nats-server compares the
	// password given at login with. Prefer the hash: the server keeps
	// only what it is given, and warns at start about plaintext.
	Password string
}

// maxIDLength is the longest tenant or agency ID.
const maxIDLength = 63

// validate checks one agency user.
func (u AgencyUser) validate() error {
	if err := checkID("tenant", u.Tenant); err != nil {
		return err
	}
	if err := checkID("agency", u.Agency); err != nil {
		return err
	}
	switch {
	case u.Username == "":
		return errors.New("username is required")
	case u.Username == InternalUser:
		return fmt.Errorf("username %q is Koers' own", InternalUser)
	case strings.ContainsAny(u.Username, " \t\r\n"):
		return fmt.Errorf("username %q holds white space", u.Username)
	case u.Password == "":
		return errors.New("password is required")
	}
	if isBcrypt(u.Password) {
		if _, err := bcrypt.Cost([]byte(u.Password)); err != nil {
			return fmt.Errorf("password looks like a bcrypt hash but is not one: %v", err)
		}
	}
	return nil
}

func checkID(what, id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("%s ID %q must be 1 to %d characters", what, id, maxIDLength)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("%s ID %q may hold only lower-case letters, digits and hyphens", what, id)
		}
	}
	return nil
}

// bcryptPrefix is how nats-server recognises a bcrypt hash in a password.
var bcryptPrefix = regexp.MustCompile(`^\$2[abxy]?\$\d{2}\$`)

func isBcrypt(password string) bool { return bcryptPrefix.MatchString(password) }

// agencySubjects are the Koers subjects one agency's account imports and
// its users may publish: the info and next-message requests of its
// consumer, and the acknowledgements of its messages (in JetStream's v1
// form $JS.ACK.<stream>.<consumer>.… and its v2 form
// $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.…).
type agencySubjects struct {
	info, next, ack, ackV2 string
}

func subjectsOf(tenant, agency string) agencySubjects {
	c := AgencyStreamName + "." + AgencyConsumerName(tenant, agency)
	return agencySubjects{
		info:  "$JS.API.CONSUMER.INFO." + c,
		next:  "$JS.API.CONSUMER.MSG.NEXT." + c,
		ack:   "$JS.ACK." + c + ".>",
		ackV2: "$JS.ACK.*.*." + c + ".>",
	}
}

func (s agencySubjects) all() []string { return []string{s.info, s.next, s.ack, s.ackV2} }

// jsAccountInfo is JetStream's account information request. An account
// without JetStream of its own answers every JetStream request with "not
// enabled" unless it imports this subject from elsewhere; agency accounts
// import it from Koers' account so that their consumer requests are
// answered by Koers' JetStream alone. AgencyPermissions does not let an
// agency send it.
const jsAccountInfo = "$JS.API.INFO"

// AgencyPermissions returns the permissions of an agency's NATS user, an
// allow list only. It may publish the info and next-message requests of
// its own consumer (AgencyConsumerName) and the acknowledgements of that
// consumer's messages, and subscribe only below its own inbox prefix
// (AgencyInboxPrefix). tenant and agency are IDs as AgencyUser requires.
//
// The permissions alone do not keep an agency out of Koers' subjects
// where it shares an account with Koers: NATS does not check a request's
// reply subject against them, and JetStream answers there. Give each
// agency an account of its own, as StartEmbedded does and
// deploy/nats/nats.conf shows.
func AgencyPermissions(tenant, agency string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: subjectsOf(tenant, agency).all()},
		Subscribe: &server.SubjectPermission{Allow: []string{AgencyInboxPrefix(tenant, agency) + ".>"}},
	}
}

// agencyAccountName names the NATS account of one agency's users.
func agencyAccountName(tenant, agency string) string {
	return AgencyConsumerName(tenant, agency)
}

// authConfig is what StartEmbedded adds to the server options when
// clients must log in.
type authConfig struct {
	users    []*server.User
	accounts []*server.Account
}

// agencyAuth validates cfg's agency users and returns the users (Koers'
// own first) and, when there are agency users, the accounts: the global
// account with its exports, and one account per agency with its imports.
func agencyAuth(cfg EmbeddedConfig) (authConfig, error) {
	var ac authConfig
	// The server keeps a bcrypt hash of Koers' own password: it warns at
	// every start about plaintext ones.
	hash, err := bcrypt.GenerateFromPassword([]byte(cfg.InternalPassword), bcrypt.DefaultCost)
	if err != nil {
		return ac, fmt.Errorf("hashing InternalPassword: %w", err)
	}
	ac.users = append(ac.users, &server.User{Username: InternalUser, Password: string(hash)})
	if len(cfg.AgencyUsers) == 0 {
		return ac, nil
	}
	global := server.NewAccount(server.DEFAULT_GLOBAL_ACCOUNT)
	accounts := map[string]*server.Account{}
	var order []*server.Account
	seen := map[string]bool{InternalUser: true}
	for i, u := range cfg.AgencyUsers {
		if err := u.validate(); err != nil {
			return ac, fmt.Errorf("%w %d (%q): %v", ErrBadAgencyUser, i+1, u.Username, err)
		}
		if seen[u.Username] {
			return ac, fmt.Errorf("%w %d: username %q is taken", ErrBadAgencyUser, i+1, u.Username)
		}
		seen[u.Username] = true
		name := agencyAccountName(u.Tenant, u.Agency)
		acc, ok := accounts[name]
		if !ok {
			acc = server.NewAccount(name)
			if err := linkAgencyAccount(global, acc, u.Tenant, u.Agency); err != nil {
				return ac, fmt.Errorf("%w %d (%q): %v", ErrBadAgencyUser, i+1, u.Username, err)
			}
			accounts[name] = acc
			order = append(order, acc)
		}
		ac.users = append(ac.users, &server.User{
			Username:    u.Username,
			Password:    u.Password,
			Account:     acc,
			Permissions: AgencyPermissions(u.Tenant, u.Agency),
		})
	}
	ac.accounts = append([]*server.Account{global}, order...)
	return ac, nil
}

// linkAgencyAccount exports the agency's subjects from the global account
// to acc alone, and imports them into acc under the same names. The
// next-message request is answered by a stream of messages, so its export
// says so.
func linkAgencyAccount(global, acc *server.Account, tenant, agency string) error {
	s := subjectsOf(tenant, agency)
	only := []*server.Account{acc}
	exports := []struct {
		subject string
		resp    server.ServiceRespType
	}{
		{jsAccountInfo, server.Singleton},
		{s.info, server.Singleton},
		{s.next, server.Streamed},
		{s.ack, server.Singleton},
		{s.ackV2, server.Singleton},
	}
	for _, e := range exports {
		if e.subject == jsAccountInfo {
			// One export serves every agency account.
			if err := global.AddServiceExport(e.subject, nil); err != nil {
				return fmt.Errorf("exporting %s: %w", e.subject, err)
			}
		} else if err := global.AddServiceExportWithResponse(e.subject, e.resp, only); err != nil {
			return fmt.Errorf("exporting %s: %w", e.subject, err)
		}
		if err := acc.AddServiceImport(global, e.subject, e.subject); err != nil {
			return fmt.Errorf("importing %s: %w", e.subject, err)
		}
	}
	return nil
}

// randomPassword returns a password for Koers' own user that nobody
// else knows.
func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bus: random password: %w", err)
	}
	return hex.EncodeToString(b), nil
}
