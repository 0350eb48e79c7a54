// Command koers runs Koers, the case-management backend for career coaching,
// outplacement and re-integration, and talks to a running Koers from a
// terminal. `koers --help` lists the commands; every flag also reads a
// KOERS_... environment variable named after it.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the practice's calendar (Europe/Amsterdam) wherever Koers runs

	"github.com/alecthomas/kong"
)

// cli is the command tree. Each command's Run method does its work.
type cli struct {
	Globals

	Serve       serveCmd       `cmd:"" help:"Run Koers: event store, NATS bus, relay and gRPC API in one process, on the embedded defaults unless flags say otherwise."`
	Case        caseCmd        `cmd:"" help:"Record and show clients' trajectories on a running Koers (koers case --help lists the commands)."`
	Relay       relayCmd       `cmd:"" help:"Run only the relay, carrying a KurrentDB event store onto a NATS JetStream event stream, for deployments where each part runs as its own process."`
	Projector   projectorCmd   `cmd:"" help:"Run the projections as a process of their own against an external NATS and PostgreSQL (scale-out)."`
	Demo        demoCmd        `cmd:"" help:"Fill a running Koers with a synthetic demo population through its public API: organisations, coaches and a few thousand cases over two years."`
	Projections projectionsCmd `cmd:"" help:"Look after the read models: status, rebuild, dead letters and retries (koers projections --help lists the commands)."`
	Token       tokenCmd       `cmd:"" help:"Mint a development token for any role with the local issuer of a data folder, which a koers serve on its defaults trusts; prints the token alone (export KOERS_TOKEN=$(koers token ...))."`
	Audit       auditCmd       `cmd:"" help:"List the audit trail of your tenant, newest first: who read a case's personal data or exported data, and when (administrators only)."`
	Feed        feedCmd        `cmd:"" help:"Follow a re-integration agency's feed: print each event of its assigned, consented cases as it arrives, until Ctrl-C, then the resume token to go on from."`
}

// Globals are the flags every command takes.
type Globals struct {
	LogLevel  slog.Level `help:"Least severe log level written: debug, info, warn or error." default:"info"`
	LogFormat string     `help:"Log format: text or json." enum:"text,json" default:"text"`
}

func (g Globals) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: g.LogLevel}
	if g.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var c cli
	parser, err := newParser(ctx, &c, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "koers: %v\n", err)
		os.Exit(2)
	}
	k, err := parser.Parse(os.Args[1:])
	parser.FatalIfErrorf(err)
	if err := run(k, &c); err != nil {
		fmt.Fprintf(os.Stderr, "koers: %v\n", err)
		os.Exit(1)
	}
}

// newParser builds the command line of c; commands print to out.
func newParser(ctx context.Context, c *cli, out io.Writer) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("koers"),
		kong.Description("Koers records career-coaching, outplacement and re-integration trajectories as events and serves them over gRPC."),
		kong.DefaultEnvars("KOERS"),
		kong.UsageOnError(),
		kong.Writers(out, os.Stderr),
		enumVars(),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(out, (*io.Writer)(nil)),
	)
}

// run runs the parsed command.
func run(k *kong.Context, c *cli) error {
	log := c.logger()
	slog.SetDefault(log)
	return k.Run(&c.Globals, log, &c.Case.caseConn)
}
