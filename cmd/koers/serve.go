package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/node"
)

type serveCmd struct {
	Data       string    `help:"Folder for everything Koers keeps on disk." default:"./koers-data" type:"path"`
	Store      string    `help:"Event store: sqlite (embedded, in the data folder) or kurrentdb (a KurrentDB node or cluster)." enum:"sqlite,kurrentdb" default:"sqlite"`
	Kurrent    string    `name:"kurrentdb-url" help:"KurrentDB connection string (esdb://host:2113?tls=true&tlsCAFile=ca.pem ...) for --store kurrentdb. Prefer the environment variable: it keeps a password out of the process list."`
	GRPCAddr   string    `name:"grpc-addr" help:"host:port for the gRPC API. Plaintext is served on loopback only, unless --allow-plaintext." default:"127.0.0.1:7400"`
	NATSURL    string    `name:"nats-url" help:"URL of an external NATS server or cluster; empty runs an embedded one in the data folder."`
	NATSListen string    `name:"nats-listen" help:"host:port on which the embedded NATS server accepts outside clients." default:"127.0.0.1:7422"`
	Replicas   int       `name:"event-stream-replicas" help:"Replicas of the JetStream event stream: 1 on one server, 3 on a cluster." default:"1"`
	Postgres   string    `name:"postgres-dsn" help:"PostgreSQL database for the read models (dashboards, reports); empty keeps them in readmodel.db in the data folder."`
	Projector  bool      `name:"external-projector" help:"Leave the projections to koers projector processes; this one only answers queries from the read models."`
	NoRelay    bool      `name:"no-relay" help:"Leave relaying the event store onto NATS to a koers relay process (KurrentDB deployments with several API processes)."`
	Metrics    string    `name:"metrics-addr" help:"host:port serving Prometheus metrics on /metrics; empty serves none." default:"127.0.0.1:7490"`
	Agencies   string    `name:"agency-users-file" help:"JSON file (mode 600) listing the re-integration agencies that read their feed over NATS: [{\"tenant\":…,\"agency\":…,\"username\":…,\"password\":\"<bcrypt hash>\"}]. On the embedded NATS server they become users that can read only their own feed; Koers creates each one's consumer." type:"path"`
	Auth       authFlags `embed:""`
	MasterKey  string    `name:"master-key-file" help:"File with the master key (32 bytes, base64) that wraps the clients' data keys. Empty: master.key in the data folder, created on first start; in production give a file from your secret store, kept apart from the data." type:"path"`
}

func (s *serveCmd) Run(ctx context.Context, log *slog.Logger) error {
	auth, err := s.Auth.config()
	if err != nil {
		return err
	}
	var agencies []bus.AgencyUser
	if s.Agencies != "" {
		if agencies, err = node.LoadAgencyUsers(s.Agencies); err != nil {
			return fmt.Errorf("--agency-users-file: %w", err)
		}
	}
	return node.Run(ctx, node.Config{
		DataDir:             s.Data,
		Store:               s.Store,
		KurrentDBURL:        s.Kurrent,
		GRPCAddr:            s.GRPCAddr,
		NATSURL:             s.NATSURL,
		NATSListen:          s.NATSListen,
		EventStreamReplicas: s.Replicas,
		MasterKeyFile:       s.MasterKey,
		PostgresDSN:         s.Postgres,
		ExternalProjector:   s.Projector,
		NoRelay:             s.NoRelay,
		MetricsAddr:         s.Metrics,
		Auth:                auth,
		AgencyUsers:         agencies,
		Logger:              log,
	})
}

// authFlags say how callers of the gRPC API authenticate and how it is
// served.
type authFlags struct {
	JWKSFile       string `name:"jwks-file" help:"JWK Set file with the public keys that sign bearer tokens (ES256, RS256). Empty, with no --jwks-url: trust the local development issuer in the data folder (see koers token)." type:"path"`
	JWKSURL        string `name:"jwks-url" help:"URL of the identity provider's JWK Set (https), fetched at start and refreshed."`
	Issuer         string `name:"jwt-issuer" help:"The iss every token must carry; required with --jwks-file, --jwks-url or --dev-hs256-secret-file."`
	Audience       string `name:"jwt-audience" help:"The aud every token must carry; required with --jwks-file, --jwks-url or --dev-hs256-secret-file."`
	DevHS256       string `name:"dev-hs256-secret-file" help:"DEVELOPMENT ONLY: accept HS256 tokens signed with the secret in this file (mode 600, at least 32 bytes), and no others." type:"path"`
	TLSCert        string `name:"tls-cert" help:"PEM certificate (chain) to serve the gRPC API over TLS." type:"path"`
	TLSKey         string `name:"tls-key" help:"PEM private key of --tls-cert." type:"path"`
	TLSClientCA    string `name:"tls-client-ca" help:"PEM CA whose client certificates authenticate system-to-system callers (mutual TLS): common name = subject, organization = tenant, role integration." type:"path"`
	AllowPlaintext bool   `name:"allow-plaintext" help:"Serve gRPC without TLS on an address other than loopback, behind a proxy that terminates TLS."`
}

func (f authFlags) config() (node.Auth, error) {
	a := node.Auth{
		JWKSFile: f.JWKSFile, JWKSURL: f.JWKSURL, Issuer: f.Issuer, Audience: f.Audience,
		TLSCertFile: f.TLSCert, TLSKeyFile: f.TLSKey, TLSClientCAFile: f.TLSClientCA,
		AllowPlaintext: f.AllowPlaintext,
	}
	if f.DevHS256 != "" {
		secret, err := node.ReadSecretFile(f.DevHS256)
		if err != nil {
			return node.Auth{}, fmt.Errorf("--dev-hs256-secret-file: %w", err)
		}
		a.DevHS256Secret = bytes.TrimSpace(secret)
	}
	return a, nil
}
