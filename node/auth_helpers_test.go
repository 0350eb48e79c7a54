package node_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/services/authn"
)

// adminCtx returns ctx carrying a token of the local development issuer of
// the data folder dir — the one a node on its defaults trusts — for a
// centre administrator of tenant acting as subject.
func adminCtx(tb testing.TB, ctx context.Context, dir, tenant, subject string) context.Context {
	tb.Helper()
	return tokenCtx(tb, ctx, dir, authn.Principal{Subject: subject, Tenant: tenant, Roles: []authn.Role{authn.RoleAdmin}})
}

// tokenCtx returns ctx carrying a token of dir's local issuer for p.
func tokenCtx(tb testing.TB, ctx context.Context, dir string, p authn.Principal) context.Context {
	tb.Helper()
	issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), true)
	if err != nil {
		tb.Fatal(err)
	}
	token, err := issuer.Mint(p, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// listServicesVia asks server reflection (v1) for the services.
func listServicesVia(ctx context.Context, conn *grpc.ClientConn) ([]string, error) {
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil {
		// A refused stream ends before the request is sent: its
		// status comes with Recv.
		if errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

// listServicesV1Alpha asks the older reflection API (v1alpha), which
// grpcurl still falls back to.
func listServicesV1Alpha(ctx context.Context, conn *grpc.ClientConn) ([]string, error) {
	stream, err := reflectionv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{
		MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{}}); err != nil {
		// A refused stream ends before the request is sent: its
		// status comes with Recv.
		if errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}
