package authn

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestUnaryInterceptorSaysWhoCalls(t *testing.T) {
	tests := []struct {
		name   string
		md     metadata.MD
		method string
		want   Caller
		code   codes.Code
	}{
		{name: "tenant and actor", md: metadata.Pairs(MetadataTenant, "acme", MetadataActor, "coach-1"),
			want: Caller{Tenant: "acme", Actor: "coach-1"}},
		{name: "with a correlation ID", md: metadata.Pairs(MetadataTenant, "acme", MetadataActor, "coach-1", MetadataCorrelationID, "job:42"),
			want: Caller{Tenant: "acme", Actor: "coach-1", CorrelationID: "job:42"}},
		{name: "no metadata", md: nil, code: codes.Unauthenticated},
		{name: "no actor", md: metadata.Pairs(MetadataTenant, "acme"), code: codes.Unauthenticated},
		{name: "no tenant", md: metadata.Pairs(MetadataActor, "coach-1"), code: codes.Unauthenticated},
		{name: "tenant in capitals", md: metadata.Pairs(MetadataTenant, "ACME", MetadataActor, "coach-1"), code: codes.Unauthenticated},
		{name: "tenant too long", md: metadata.Pairs(MetadataTenant, strings.Repeat("a", 64), MetadataActor, "coach-1"), code: codes.Unauthenticated},
		{name: "two tenants", md: metadata.Pairs(MetadataTenant, "acme", MetadataTenant, "other", MetadataActor, "coach-1"), code: codes.Unauthenticated},
		{name: "actor with a space", md: metadata.Pairs(MetadataTenant, "acme", MetadataActor, "coach one"), code: codes.Unauthenticated},
		{name: "malformed correlation ID", md: metadata.Pairs(MetadataTenant, "acme", MetadataActor, "c", MetadataCorrelationID, "a b"), code: codes.Unauthenticated},
		{name: "health check passes untouched", md: nil, method: "/grpc.health.v1.Health/Check"},
	}
	intercept := UnaryInterceptor("/koers.")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "/koers.case.v1.CaseService/GetCase"
			}
			ctx := metadata.NewIncomingContext(context.Background(), tt.md)
			var got Caller
			var reached bool
			_, err := intercept(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
				reached = true
				got, _ = FromContext(ctx)
				return nil, nil
			})
			if code := status.Code(err); code != tt.code {
				t.Fatalf("code %s, want %s (%v)", code, tt.code, err)
			}
			if reached != (tt.code == codes.OK) {
				t.Errorf("handler reached: %t", reached)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("caller (-want +got):\n%s", diff)
			}
		})
	}
}
