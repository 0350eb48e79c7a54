package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ca is a certificate authority made for a test.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: cert, key: key}
}

// issue makes a certificate for subject, for a server when ip is given
// and for a client otherwise.
func (c *ca) issue(t *testing.T, subject pkix.Name, ip net.IP) tls.Certificate {
	t.Helper()
	key := newECKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (c *ca) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// writePEM writes PEM blocks to a new file in dir.
func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsServer is a gRPC health server on ServerTLS whose interceptor
// authenticates every call and records the outcome.
type tlsServer struct {
	addr   string
	mu     sync.Mutex
	calls  int
	caught Principal
}

func startTLSServer(t *testing.T, a *Authenticator, serverCA, clientCA *ca) *tlsServer {
	t.Helper()
	dir := t.TempDir()
	cert := serverCA.issue(t, pkix.Name{CommonName: "koers"}, net.IPv4(127, 0, 0, 1))
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(
		writePEM(t, dir, "server.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		writePEM(t, dir, "server-key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		writePEM(t, dir, "client-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: clientCA.cert.Raw}),
	)
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, err := a.Authenticate(ctx)
			s.mu.Lock()
			s.calls++
			s.caught = p
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	s.addr = lis.Addr().String()
	return s
}

func (s *tlsServer) last() (int, Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.caught
}

func TestMutualTLSAuthenticatesSystemsByTheirCertificate(t *testing.T) {
	serverCA, clientCA, strangerCA := newCA(t, "server CA"), newCA(t, "client CA"), newCA(t, "stranger CA")
	es := newECKey(t)
	a := newAuthenticator(t, Config{JWKSFile: writeJWKS(t, jwk{kid: "es-1", key: &es.PublicKey}), Issuer: testIssuer,
		Audience: testAudience, Now: time.Now})
	srv := startTLSServer(t, a, serverCA, clientCA)
	now := time.Now()
	token := sign(t, jwt.SigningMethodES256, es, "es-1", with(coachClaims(), jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	coach := Principal{Subject: "coach-anna", Tenant: "acme", Roles: []Role{RoleCoach}, CoachID: "coach-anna", Via: ViaJWT}

	tests := []struct {
		name    string
		cert    *tls.Certificate
		token   string
		want    Principal
		code    codes.Code
		err     string
		force   bool // send the certificate even when the server names other CAs
		reached bool // whether the call got past the TLS handshake
	}{
		{name: "client certificate", cert: ptr(clientCA.issue(t, pkix.Name{CommonName: "crm-sync", Organization: []string{"acme", "ignored"}}, nil)),
			want: Principal{Subject: "crm-sync", Tenant: "acme", Roles: []Role{RoleIntegration}, Via: ViaMTLS}, reached: true},
		{name: "bearer token over TLS without a certificate", token: token, want: coach, reached: true},
		{name: "a bearer token beats a certificate", cert: ptr(clientCA.issue(t, pkix.Name{CommonName: "crm-sync", Organization: []string{"acme"}}, nil)),
			token: token, want: coach, reached: true},
		{name: "neither", code: codes.Unauthenticated, err: "metadata authorization is missing", reached: true},
		{name: "organisation that is no tenant", cert: ptr(clientCA.issue(t, pkix.Name{CommonName: "crm-sync", Organization: []string{"Acme B.V."}}, nil)),
			code: codes.Unauthenticated, err: "client certificate organisation (O) must be a tenant", reached: true},
		{name: "no organisation", cert: ptr(clientCA.issue(t, pkix.Name{CommonName: "crm-sync"}, nil)),
			code: codes.Unauthenticated, err: "client certificate has no organisation (O) naming its tenant", reached: true},
		{name: "common name with a space", cert: ptr(clientCA.issue(t, pkix.Name{CommonName: "crm sync", Organization: []string{"acme"}}, nil)),
			code: codes.Unauthenticated, err: "client certificate common name (CN) must be", reached: true},
		// Go's client offers only certificates of the CAs the server names,
		// so this one is never sent and counts for nothing ...
		{name: "certificate of another CA", cert: ptr(strangerCA.issue(t, pkix.Name{CommonName: "crm-sync", Organization: []string{"acme"}}, nil)),
			code: codes.Unauthenticated, err: "metadata authorization is missing", reached: true},
		// ... and a client that sends it anyway fails the handshake.
		{name: "certificate of another CA sent anyway", cert: ptr(strangerCA.issue(t, pkix.Name{CommonName: "crm-sync", Organization: []string{"acme"}}, nil)),
			force: true, code: codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clientTLS := &tls.Config{RootCAs: serverCA.pool(), MinVersion: tls.VersionTLS12}
			switch {
			case tc.force:
				clientTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			case tc.cert != nil:
				clientTLS.Certificates = []tls.Certificate{*tc.cert}
			}
			conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
			}
			before, _ := srv.last()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			after, got := srv.last()
			if reached := after > before; reached != tc.reached {
				t.Fatalf("call reached the server: %v, want %v (error %v)", reached, tc.reached, err)
			}
			if tc.code != codes.OK {
				if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.err) {
					t.Fatalf("error %v, want %v containing %q", err, tc.code, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestServerTLSRefusesWhatItCannotUse(t *testing.T) {
	serverCA := newCA(t, "server CA")
	dir := t.TempDir()
	cert := serverCA.issue(t, pkix.Name{CommonName: "koers"}, net.IPv4(127, 0, 0, 1))
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writePEM(t, dir, "server.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyFile := writePEM(t, dir, "server-key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg, err := ServerTLS(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("without a client CA: min version %x, client auth %v; want TLS 1.2 and no client certificates", cfg.MinVersion, cfg.ClientAuth)
	}
	cfg, err = ServerTLS(certFile, keyFile, certFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("with a client CA: client auth %v, want VerifyClientCertIfGiven", cfg.ClientAuth)
	}
	for _, tc := range []struct {
		name                string
		cert, key, clientCA string
		err                 string
	}{
		{"missing certificate", filepath.Join(dir, "none.pem"), keyFile, "", "server certificate"},
		{"key for another certificate", certFile, certFile, "", "server certificate"},
		{"missing client CA", certFile, keyFile, filepath.Join(dir, "none.pem"), "client CA"},
		{"client CA without PEM", certFile, keyFile, notPEM, "holds no PEM certificate"},
	} {
		if _, err := ServerTLS(tc.cert, tc.key, tc.clientCA); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.err)
		}
	}
}
