// Package authn says who is calling a Koers gRPC service: the tenant the
// call acts for and the actor who acts.
//
// Until real authentication arrives, the caller states both in gRPC
// metadata (MetadataTenant, MetadataActor) and Koers believes it. This
// package is the one place that reads them: services take the Caller from
// the context with FromContext and never look at the metadata themselves,
// so the authentication layer replaces UnaryInterceptor and nothing else.
package authn

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The gRPC metadata keys a caller states itself with.
const (
	// MetadataTenant names the tenant the call acts for.
	MetadataTenant = "koers-tenant"
	// MetadataActor names who acts: a coach's or a system's subject ID.
	MetadataActor = "koers-actor"
	// MetadataCorrelationID optionally ties the call to a larger piece of
	// work; it has the form of a request ID.
	MetadataCorrelationID = "koers-correlation-id"
)

// Limits of the caller's identifiers.
const (
	// MaxTenantLength is the longest tenant ID: it is a NATS subject token.
	MaxTenantLength = 63
	// MaxActorLength is the longest actor.
	MaxActorLength = 128
	// MaxCorrelationIDLength is the longest correlation ID.
	MaxCorrelationIDLength = 64
)

// Caller is who makes a call.
type Caller struct {
	// Tenant is the tenant the call acts for: lower-case letters, digits
	// and hyphens, 1 to MaxTenantLength characters.
	Tenant string
	// Actor is who acts, never a client's name: 1 to MaxActorLength
	// printable characters without spaces.
	Actor string
	// CorrelationID ties the call to a larger piece of work; empty when the
	// caller sent none.
	CorrelationID string
}

type callerKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller UnaryInterceptor found for the call, and
// false when the call came past no interceptor.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// UnaryInterceptor reads the caller from the metadata of every call to a
// method whose full name starts with prefix (for example "/koers."), and
// refuses the call with Unauthenticated when the tenant or actor is missing
// or malformed. Other calls (health checks, reflection) pass untouched.
func UnaryInterceptor(prefix string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		c, err := callerOf(md)
		if err != nil {
			return nil, err
		}
		return handler(NewContext(ctx, c), req)
	}
}

func callerOf(md metadata.MD) (Caller, error) {
	tenant, err := single(md, MetadataTenant)
	if err != nil {
		return Caller{}, err
	}
	if !ValidTenant(tenant) {
		return Caller{}, status.Errorf(codes.Unauthenticated,
			"metadata %s must be 1 to %d lower-case letters, digits and hyphens", MetadataTenant, MaxTenantLength)
	}
	actor, err := single(md, MetadataActor)
	if err != nil {
		return Caller{}, err
	}
	if !ValidActor(actor) {
		return Caller{}, status.Errorf(codes.Unauthenticated,
			"metadata %s must be 1 to %d printable characters without spaces", MetadataActor, MaxActorLength)
	}
	c := Caller{Tenant: tenant, Actor: actor}
	switch ids := md.Get(MetadataCorrelationID); {
	case len(ids) > 1:
		return Caller{}, status.Errorf(codes.Unauthenticated, "metadata %s is given %d times", MetadataCorrelationID, len(ids))
	case len(ids) == 1:
		if !ValidCorrelationID(ids[0]) {
			return Caller{}, status.Errorf(codes.Unauthenticated,
				"metadata %s must be 1 to %d characters from A-Z, a-z, 0-9 and . _ : -", MetadataCorrelationID, MaxCorrelationIDLength)
		}
		c.CorrelationID = ids[0]
	}
	return c, nil
}

// single returns the one value of key; a missing or repeated key is
// refused, since two tenants in one call cannot both be believed.
func single(md metadata.MD, key string) (string, error) {
	switch v := md.Get(key); len(v) {
	case 0:
		return "", status.Errorf(codes.Unauthenticated, "metadata %s is missing", key)
	case 1:
		return v[0], nil
	default:
		return "", status.Errorf(codes.Unauthenticated, "metadata %s is given %d times", key, len(v))
	}
}

// ValidTenant reports whether t is a well-formed tenant ID.
func ValidTenant(t string) bool {
	if t == "" || len(t) > MaxTenantLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidActor reports whether a is a well-formed actor.
func ValidActor(a string) bool {
	if a == "" || !utf8.ValidString(a) || utf8.RuneCountInString(a) > MaxActorLength {
		return false
	}
	for _, r := range a {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ValidCorrelationID reports whether id is a well-formed correlation ID:
// 1 to MaxCorrelationIDLength characters from A-Z, a-z, 0-9 and . _ : -,
// the form of a request ID.
func ValidCorrelationID(id string) bool {
	if id == "" || len(id) > MaxCorrelationIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
