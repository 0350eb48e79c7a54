package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/projections"
)

// projectionsCmd groups the commands that look after the read models.
type projectionsCmd struct {
	Status      projectionsStatusCmd      `cmd:"" help:"Show each projection's generation, position, lag behind the event stream, unknown events and dead letters."`
	Rebuild     projectionsRebuildCmd     `cmd:"" help:"Rebuild a projection from the first event into fresh tables while queries keep reading the old ones; swap when caught up."`
	DeadLetters projectionsDeadLettersCmd `cmd:"" name:"dead-letters" help:"List the events a projection parked because applying them failed."`
	Retry       projectionsRetryCmd       `cmd:"" help:"Apply parked events of a projection again, after a fix: all of them, or the one at POSITION."`
}

// readModelFlags say where the read models and the event stream are.
type readModelFlags struct {
	Data        string `help:"Data folder whose readmodel.db holds the read models; ignored with --postgres-dsn." default:"./koers-data" type:"path"`
	PostgresDSN string `name:"postgres-dsn" help:"PostgreSQL database holding the read models, instead of the data folder's SQLite file."`
	NATSURL     string `name:"nats-url" help:"NATS server with the event stream; koers serve's embedded one listens on 127.0.0.1:7422." default:"nats://127.0.0.1:7422"`
}

// openDB opens the read models the flags name. A SQLite file must exist
// already: these commands look after read models, they do not start new
// ones in a mistyped folder.
func (f readModelFlags) openDB(ctx context.Context) (*projections.DB, error) {
	if f.PostgresDSN != "" {
		return projections.Open(ctx, projections.Options{PostgresDSN: f.PostgresDSN})
	}
	path := filepath.Join(f.Data, "readmodel.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no read models in %s: %w (start koers serve there first, or give --postgres-dsn)", f.Data, err)
	}
	return projections.Open(ctx, projections.Options{Path: path})
}

// connect reaches the event stream; the caller closes the connection.
func (f readModelFlags) connect(ctx context.Context) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	opts := []nats.Option{nats.Name("koers projections"), nats.Timeout(3 * time.Second)}
	// A koers serve whose embedded server has agency users requires a
	// login; its data folder holds Koers' own password.
	if pw, err := os.ReadFile(node.InternalNATSPasswordFile(f.Data)); err == nil {
		opts = append(opts, nats.UserInfo(bus.InternalUser, strings.TrimSpace(string(pw))))
	}
	nc, err := nats.Connect(f.NATSURL, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w", f.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.DefaultStreamName)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("event stream %s on %s: %w", bus.DefaultStreamName, f.NATSURL, err)
	}
	return nc, js, s, nil
}

func projectionNamed(name string, js jetstream.JetStream, log *slog.Logger) (projections.Projection, error) {
	models, err := node.ReadModels(node.Calendar(), js, log)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range models {
		if p.Name() == name {
			return p, nil
		}
		names = append(names, p.Name())
	}
	return nil, fmt.Errorf("no projection %q; there are %s", name, strings.Join(names, ", "))
}

type projectionsStatusCmd struct {
	readModelFlags
}

func (c *projectionsStatusCmd) Run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var stream jetstream.Stream
	if nc, _, s, err := c.connect(ctx); err != nil {
		log.Warn("lag unknown: the event stream cannot be reached", "err", err)
	} else {
		defer nc.Close()
		stream = s
	}
	statuses, err := projections.ReadStatus(ctx, db, stream)
	if err != nil {
		return err
	}
	if len(statuses) == 0 {
		fmt.Fprintln(out, "no projections yet")
		return nil
	}
	_, err = io.WriteString(out, projections.FormatStatus(statuses))
	return err
}

type projectionsRebuildCmd struct {
	readModelFlags
	Name string `arg:"" help:"Projection to rebuild: dashboard, report or agencyfeed."`
}

func (c *projectionsRebuildCmd) Run(ctx context.Context, log *slog.Logger) error {
	nc, js, _, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := projectionNamed(c.Name, js, log)
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var progress func(projections.Progress)
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := &progressBar{w: os.Stderr, start: time.Now()}
		defer bar.finish()
		progress = bar.update
		// The bar is the progress; keep the logger to warnings.
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	} else {
		progress = logProgress(log, 5*time.Second)
	}
	return projections.Rebuild(ctx, projections.RebuildConfig{DB: db, JetStream: js, Projection: p, Logger: log, Progress: progress})
}

type projectionsDeadLettersCmd struct {
	readModelFlags
	Name string `arg:"" help:"Projection whose parked events to list."`
}

func (c *projectionsDeadLettersCmd) Run(ctx context.Context, out io.Writer) error {
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	dead, err := projections.DeadLetters(ctx, db, c.Name)
	if err != nil {
		return err
	}
	if len(dead) == 0 {
		fmt.Fprintf(out, "%s has no parked events\n", c.Name)
		return nil
	}
	fmt.Fprintf(out, "%-12s %-36s %-40s %8s  %s\n", "POSITION", "EVENT", "TYPE", "ATTEMPTS", "ERROR")
	for _, d := range dead {
		fmt.Fprintf(out, "%-12d %-36s %-40s %8d  %s\n", d.Position, d.EventID, d.Type, d.Attempts, d.Error)
	}
	return nil
}

type projectionsRetryCmd struct {
	readModelFlags
	Name     string `arg:"" help:"Projection whose parked events to apply again."`
	Position uint64 `arg:"" optional:"" help:"Position of the one event to retry; all parked events when left out."`
}

func (c *projectionsRetryCmd) Run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	nc, js, _, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := projectionNamed(c.Name, js, log)
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := projections.Retry(ctx, db, p, eventstore.Position(c.Position))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "applied %d, no longer handled %d, failed again %d\n", len(res.Applied), len(res.Unknown), len(res.Failed))
	for _, d := range res.Failed {
		fmt.Fprintf(out, "  position %d (%s): %s\n", d.Position, d.Type, d.Error)
	}
	if len(res.Failed) > 0 {
		return errors.New("some parked events failed again; they stay parked")
	}
	return nil
}

// progressBar draws a rebuild's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func (b *progressBar) update(p projections.Progress) {
	if !p.Done && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	frac := 1.0
	if p.Target > 0 && !p.Done {
		frac = min(1, float64(p.Position)/float64(p.Target))
	}
	filled := int(frac * width)
	rate := float64(p.Applied) / max(time.Since(b.start).Seconds(), 0.001)
	fmt.Fprintf(b.w, "\r%s generation %d [%s%s] %3.0f%% %d/%d %.0f events/s ",
		p.Projection, p.Generation, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*frac, p.Position, p.Target, rate)
	b.drawn = true
}

func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

// logProgress logs a rebuild's progress at most every interval, and at the
// end.
func logProgress(log *slog.Logger, interval time.Duration) func(projections.Progress) {
	var last time.Time
	return func(p projections.Progress) {
		if !p.Done && time.Since(last) < interval {
			return
		}
		last = time.Now()
		log.Info("rebuild progress", "projection", p.Projection, "generation", p.Generation,
			"position", p.Position, "target", p.Target, "applied", p.Applied, "done", p.Done)
	}
}
