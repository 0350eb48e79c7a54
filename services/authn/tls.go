package authn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ServerTLS returns the TLS configuration of the gRPC listener: the
// server's certificate chain and key from PEM files, TLS 1.2 or later.
//
// With clientCAFile (PEM, one or more CA certificates) the server also
// asks for a client certificate and, when one is given, verifies that it
// chains to one of those CAs for client authentication, failing the
// handshake otherwise. A client without a certificate still connects, and
// authenticates with a bearer token. A verified certificate authenticates
// a mobility centre's system when the call carries no bearer token:
//
//	certificate                    principal
//	subject common name (CN)       Subject (the form ValidActor accepts)
//	first subject organisation (O) Tenant (the form ValidTenant accepts)
//	                               Roles [integration], Via "mtls"
//
// So the client CA vouches for tenants: give it only to those who may
// issue certificates for every tenant they name.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("authn: server certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if clientCAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("authn: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("authn: client CA %s holds no PEM certificate", clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	return cfg, nil
}
