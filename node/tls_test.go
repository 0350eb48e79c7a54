package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// TestTheAPIIsPlaintextOnLoopbackOnly checks the listener rule: a node
// refuses to serve gRPC in plaintext on an address other than loopback,
// unless told a proxy terminates TLS.
func TestTheAPIIsPlaintextOnLoopbackOnly(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), GRPCAddr: "0.0.0.0:0",
		NATSListen: "127.0.0.1:0", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("plaintext on 0.0.0.0: %v, want a refusal", err)
	}
	n, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), GRPCAddr: "0.0.0.0:0",
		NATSListen: "127.0.0.1:0", Auth: node.Auth{AllowPlaintext: true}, Logger: quiet})
	if err != nil {
		t.Fatalf("plaintext on 0.0.0.0, allowed: %v", err)
	}
	n.Stop(context.Background())
}

// TestTheAPIServesTLS starts a node with a certificate and calls it over
// TLS; a plaintext client gets nowhere.
func TestTheAPIServesTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := testCertificate(t, dir)
	n, err := node.Start(context.Background(), node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Auth:   node.Auth{TLSCertFile: certFile, TLSKeyFile: keyFile},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	ctx := adminCtx(t, context.Background(), dir, "acme", "admin-1")

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	secure, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	if _, err := casev1.NewCaseServiceClient(secure).GetCase(ctx, &casev1.GetCaseRequest{CaseId: "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetCase over TLS: %v, want NotFound (an answer)", err)
	}

	plain, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := casev1.NewCaseServiceClient(plain).GetCase(short, &casev1.GetCaseRequest{CaseId: "3f2b7c1e-8a4d-4e6f-9b1a-2c3d4e5f6a7b"}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("GetCase in plaintext to a TLS listener: %v, want no connection", err)
	}
}

// testCertificate makes a CA and a server certificate for 127.0.0.1, and
// returns the CA's PEM and the server's certificate and key files.
func testCertificate(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "koers-api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}
