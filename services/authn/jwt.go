package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MetadataAuthorization is the gRPC metadata key of the bearer token:
// "authorization: Bearer <token>".
const MetadataAuthorization = "authorization"

// MaxTokenLength is the longest token read, in bytes; longer ones are
// refused before any parsing.
const MaxTokenLength = 16 << 10

// Defaults of Config.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often the JWKS is fetched again.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultMinRefreshInterval is the least time between two fetches of
	// the JWKS prompted by tokens naming an unknown key.
	DefaultMinRefreshInterval = 30 * time.Second
)

// Config says which tokens an Authenticator accepts.
//
// Exactly one key source is given: JWKSFile, JWKSURL, or — for development
// only — HS256Secret.
type Config struct {
	// JWKSFile is a JWK Set (RFC 7517) on disk holding the issuer's public
	// keys. It is read at start (New fails if it cannot be) and read again
	// on the same schedule as JWKSURL, so a rotated file is picked up.
	JWKSFile string
	// JWKSURL is where the issuer publishes its JWK Set: https, or http on
	// loopback only. It is fetched at start (New fails if it cannot be),
	// every RefreshInterval, and when a token names an unknown key, at most
	// once per MinRefreshInterval. A failed fetch keeps the last good keys.
	//
	// Of a set, the EC P-256 keys verify ES256 and the RSA keys of at least
	// MinRSABits verify RS256, each only that algorithm; a key needs a kid,
	// and keys for other uses, algorithms or curves, and keys carrying
	// private material, are skipped with a warning in the log.
	JWKSURL string
	// HS256Secret, when set, makes the Authenticator accept HS256 tokens
	// signed with this secret and nothing else: a development option,
	// since everyone who can verify such a token can also mint one. At
	// least MinHS256SecretLength bytes.
	HS256Secret []byte
	// Issuer is the iss every token must carry. Required.
	Issuer string
	// Audience must be among a token's aud. Required.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeeway.
	Leeway time.Duration
	// RefreshInterval is how often the JWKS is fetched again; zero means
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between fetches prompted by an
	// unknown kid, so that tokens with made-up kids cannot hammer the
	// issuer; zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// HTTPClient fetches JWKSURL; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives warnings about the JWKS; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock tokens are checked against; nil means time.Now.
	Now func() time.Time
}

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	sources := 0
	for _, set := range []bool{c.JWKSFile != "", c.JWKSURL != "", c.HS256Secret != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return c, fmt.Errorf("authn: give exactly one of a JWKS file, a JWKS URL and an HS256 secret (%d given)", sources)
	case c.HS256Secret != nil && len(c.HS256Secret) < MinHS256SecretLength:
		return c, fmt.Errorf("authn: the HS256 secret is %d bytes; want at least %d", len(c.HS256Secret), MinHS256SecretLength)
	case c.Issuer == "":
		return c, errors.New("authn: the token issuer is not configured")
	case c.Audience == "":
		return c, errors.New("authn: the token audience is not configured")
	case c.Leeway < 0 || c.RefreshInterval < 0 || c.MinRefreshInterval < 0:
		return c, errors.New("authn: leeway and refresh intervals must not be negative")
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Authenticator establishes who makes a gRPC call, from a bearer JWT or,
// failing that, a verified client certificate.
//
// A bearer token ("authorization: Bearer <token>" metadata, given once) is
// accepted when its signature verifies with a key of the configured JWKS
// (ES256 or RS256, the algorithm fitting the key's type; never "none",
// never HS256 unless Config.HS256Secret is set, and then only HS256), its
// iss is Config.Issuer, its aud includes Config.Audience, its exp lies
// ahead and its nbf and iat do not lie ahead (each within Config.Leeway),
// and its claims describe a valid principal:
//
//	sub               Principal.Subject (the form ValidActor accepts)
//	tenant            Principal.Tenant (the form ValidTenant accepts)
//	roles             Principal.Roles: an array of known roles, at least one, none twice
//	coach_id          Principal.CoachID: with role coach, and only then
//	organisation_id   Principal.OrganisationID: with role employer, and only then
//	agency_id         Principal.AgencyID: with role agency, and only then
//
// Organisation and agency IDs are 1 to MaxPartyIDLength lower-case letters,
// digits and hyphens; a coach ID has the form of an actor.
//
// Without a bearer token, a client certificate that the TLS handshake
// verified against the client CA (see ServerTLS) authenticates a system:
// see the mapping at ServerTLS. A bearer token, when sent, always decides.
//
// Every refusal is a gRPC status with code Unauthenticated whose message
// says what was wrong — missing, malformed, expired, not yet valid, wrong
// issuer or audience, unknown key, an algorithm not accepted, a claim
// missing or malformed, or just "token signature invalid" — without
// echoing the token or any text from it: at most the canonical name of a
// known algorithm and the time of exp or nbf.
//
// An Authenticator is safe for concurrent use.
type Authenticator struct {
	cfg    Config
	keys   *jwks // nil with an HS256 secret
	parser *jwt.Parser
	cache  tokenCache

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an Authenticator for cfg, with the JWKS fetched once. It
// keeps the keys fresh in the background until ctx ends or Close is
// called.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		cfg:    cfg,
		parser: jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding()),
		done:   make(chan struct{}),
	}
	if cfg.HS256Secret != nil {
		a.stop = func() {}
		close(a.done)
		return a, nil
	}
	if a.keys, err = newJWKS(ctx, cfg); err != nil {
		return nil, err
	}
	ctx, a.stop = context.WithCancel(ctx)
	go func() {
		defer close(a.done)
		a.keys.run(ctx, cfg.RefreshInterval)
	}()
	return a, nil
}

// Close stops refreshing the keys and waits until the refresh has stopped.
// Tokens are still checked against the last keys.
func (a *Authenticator) Close() {
	a.closeOnce.Do(a.stop)
	<-a.done
}

// Authenticate returns the principal of the call ctx belongs to, with the
// correlation ID the caller sent (MetadataCorrelationID, optional). It
// fails with an Unauthenticated status.
func (a *Authenticator) Authenticate(ctx context.Context) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	p, err := a.principal(ctx, md)
	if err != nil {
		return Principal{}, err
	}
	if p.CorrelationID, err = correlationID(md); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// ParseToken checks a bare token (without "Bearer ") as Authenticate
// does, and returns its principal. Its errors are Unauthenticated
// statuses.
func (a *Authenticator) ParseToken(raw string) (Principal, error) {
	return a.parseToken(context.Background(), raw)
}

func (a *Authenticator) principal(ctx context.Context, md metadata.MD) (Principal, error) {
	switch v := md.Get(MetadataAuthorization); len(v) {
	case 0:
		if p, ok, err := peerPrincipal(ctx); ok {
			return p, err
		}
		return Principal{}, unauthenticated("metadata %s is missing: send %q or a client certificate", MetadataAuthorization, MetadataAuthorization+": Bearer <token>")
	case 1:
		raw, err := bearer(v[0])
		if err != nil {
			return Principal{}, err
		}
		return a.parseToken(ctx, raw)
	default:
		return Principal{}, unauthenticated("metadata %s is given %d times", MetadataAuthorization, len(v))
	}
}

// bearer takes the token out of an authorization value. The scheme is
// case-insensitive (RFC 7235).
func bearer(v string) (string, error) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", unauthenticated("metadata %s must be %q", MetadataAuthorization, "Bearer <token>")
	}
	if token = strings.TrimLeft(token, " "); token == "" {
		return "", unauthenticated("metadata %s holds an empty bearer token", MetadataAuthorization)
	}
	return token, nil
}

func correlationID(md metadata.MD) (string, error) {
	switch ids := md.Get(MetadataCorrelationID); len(ids) {
	case 0:
		return "", nil
	case 1:
		if !ValidCorrelationID(ids[0]) {
			return "", unauthenticated("metadata %s must be 1 to %d characters from A-Z, a-z, 0-9 and . _ : -", MetadataCorrelationID, MaxCorrelationIDLength)
		}
		return ids[0], nil
	default:
		return "", unauthenticated("metadata %s is given %d times", MetadataCorrelationID, len(ids))
	}
}

func (a *Authenticator) parseToken(ctx context.Context, raw string) (Principal, error) {
	switch {
	case raw == "":
		return Principal{}, unauthenticated("token is empty")
	case len(raw) > MaxTokenLength:
		return Principal{}, unauthenticated("token is longer than %d bytes", MaxTokenLength)
	}
	now := a.cfg.Now()
	if p, ok := a.cache.get(raw, now); ok {
		return p, nil
	}
	var tc tokenClaims
	_, err := a.parser.ParseWithClaims(raw, &tc, func(t *jwt.Token) (any, error) { return a.key(ctx, t) })
	if err != nil {
		return Principal{}, tokenError(err)
	}
	if err := a.checkRegistered(&tc); err != nil {
		return Principal{}, err
	}
	p, err := tc.principal()
	if err != nil {
		return Principal{}, unauthenticated("token %v", err)
	}
	// checkRegistered saw exp; without leeway, so that a cached token
	// never outlives what a fresh check would accept.
	a.cache.put(raw, p, now, tc.ExpiresAt.Time)
	return p, nil
}

// key is the key t must verify with; it refuses algorithms that do not
// fit the configuration or the key before any signature is checked.
func (a *Authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg() // one of the library's registered names, never raw input
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions marked critical must be understood,
		// and this server understands none.
		return nil, refusal("token header marks extensions critical (crit); none are supported")
	}
	if a.cfg.HS256Secret != nil {
		if alg != AlgHS256 {
			return nil, refusal(fmt.Sprintf("token algorithm %s is not accepted: this server takes only HS256 tokens (development secret)", alg))
		}
		return a.cfg.HS256Secret, nil
	}
	if alg != AlgES256 && alg != AlgRS256 {
		return nil, refusal(fmt.Sprintf("token algorithm %s is not accepted; want %s or %s", alg, AlgES256, AlgRS256))
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, refusal("token names no key (kid)")
	}
	k, ok := a.keys.lookup(ctx, kid)
	if !ok {
		return nil, refusal("token is signed with an unknown key")
	}
	if k.alg != alg {
		return nil, refusal(fmt.Sprintf("token algorithm %s does not fit its key, which verifies %s", alg, k.alg))
	}
	return k.key, nil
}

// checkRegistered checks iss, aud, exp, nbf and iat of a token whose
// signature verified.
func (a *Authenticator) checkRegistered(tc *tokenClaims) error {
	now, leeway := a.cfg.Now(), a.cfg.Leeway
	switch {
	case tc.Issuer == "":
		return unauthenticated("token claim iss is missing")
	case tc.Issuer != a.cfg.Issuer:
		return unauthenticated("token issuer is not %q", a.cfg.Issuer)
	case len(tc.Audience) == 0:
		return unauthenticated("token claim aud is missing")
	case !slices.Contains(tc.Audience, a.cfg.Audience):
		return unauthenticated("token is not for audience %q", a.cfg.Audience)
	case tc.ExpiresAt == nil:
		return unauthenticated("token claim exp is missing")
	case !now.Before(tc.ExpiresAt.Add(leeway)):
		return unauthenticated("token expired at %s", tc.ExpiresAt.UTC().Format(time.RFC3339))
	case tc.NotBefore != nil && now.Before(tc.NotBefore.Add(-leeway)):
		return unauthenticated("token is not valid before %s", tc.NotBefore.UTC().Format(time.RFC3339))
	case tc.IssuedAt != nil && now.Before(tc.IssuedAt.Add(-leeway)):
		return unauthenticated("token claim iat lies in the future")
	}
	return nil
}

// refusal is a reason to refuse a token, worded to be shown to the caller.
type refusal string

func (r refusal) Error() string { return string(r) }

// tokenError turns an error of the JWT library into an Unauthenticated
// status. Its own messages are not passed on: they could say more about a
// failed signature than that it failed.
func tokenError(err error) error {
	var r refusal
	switch {
	case errors.As(err, &r):
		return unauthenticated("%s", r)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated("token is malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthenticated("token signature invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return unauthenticated("token names no algorithm this server accepts")
	default:
		return unauthenticated("token is invalid")
	}
}

func unauthenticated(format string, args ...any) error {
	return status.Errorf(codes.Unauthenticated, format, args...)
}
