package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
)

// feedRun is a `koers feed` running in the test's process until stop
// cancels its context, as Ctrl-C does.
type feedRun struct {
	cancel context.CancelFunc
	lines  chan string
	stderr *bytes.Buffer // written by the command only; read once done
	done   chan error
}

// startFeed runs `koers feed args...` with a context of its own, its
// output read line by line as it is printed.
func startFeed(t *testing.T, args ...string) *feedRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var c cli
	pr, pw := io.Pipe()
	parser, err := newParser(ctx, &c, pw)
	if err != nil {
		t.Fatalf("building the command line: %v", err)
	}
	k, err := parser.Parse(append([]string{"feed"}, args...))
	if err != nil {
		t.Fatalf("koers feed %s: %v", strings.Join(args, " "), err)
	}
	r := &feedRun{cancel: cancel, lines: make(chan string), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	c.Feed.stderr = r.stderr
	go func() {
		err := run(k, &c)
		pw.Close()
		r.done <- err
	}()
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// next returns the next line the feed prints.
func (r *feedRun) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-r.lines:
		if !ok {
			t.Fatalf("koers feed ended (%v) before the line expected; stderr: %s", <-r.done, r.stderr)
		}
		return line
	case <-time.After(30 * time.Second):
		t.Fatal("koers feed printed nothing more in 30s")
		return ""
	}
}

// stop cancels the feed as Ctrl-C does, and returns what it printed
// until it ended, what it wrote on stderr and its error. Later calls
// return nothing.
func (r *feedRun) stop(t *testing.T) (rest []string, stderr string, err error) {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait waits for the feed to end by itself, and returns what stop does.
func (r *feedRun) wait(t *testing.T) (rest []string, stderr string, err error) {
	t.Helper()
	if r.done == nil {
		return nil, "", nil
	}
	for line := range r.lines {
		rest = append(rest, line)
	}
	select {
	case err = <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("koers feed printed no more but did not end")
	}
	r.done = nil
	return rest, r.stderr.String(), err
}

// interruptedFeed runs `koers feed` in a process of its own, sends it
// SIGINT (Ctrl-C) once it printed n lines, and returns its exit code, the
// lines and its stderr.
func interruptedFeed(t *testing.T, n int) (code int, stdout []string, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "feed")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(pipe)
	for len(stdout) < n && sc.Scan() {
		stdout = append(stdout, sc.Text())
	}
	if len(stdout) < n {
		err := cmd.Wait()
		t.Fatalf("koers feed ended (%v) after printing %q; stderr: %s", err, stdout, errBuf.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stdout = append(stdout, sc.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout, errBuf.String()
}

// feedLine is a text line of the feed: resume token, case, event type and
// when it was recorded.
var feedLine = regexp.MustCompile(`^(\S+)\s+([0-9a-f-]{36})  (\w+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$`)

func parseFeedLine(t *testing.T, line string) (token, caseID, eventType string) {
	t.Helper()
	m := feedLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("feed line %q is not: resume token, case, event type, recorded time", line)
	}
	return m[1], m[2], m[3]
}

func lastToken(t *testing.T, stderr string) string {
	t.Helper()
	m := regexp.MustCompile(`last resume token: (\S+) `).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("stderr %q does not give the last resume token", stderr)
	}
	return m[1]
}

func TestFeedFollowsTheAgencysCaseAndResumesWithoutRepeat(t *testing.T) {
	dir := startTestNode(t, "acme", "admin-1")
	t.Setenv("KOERS_AGENCY", "reintegra")
	other := openCase(t, "--initiated-by", "organisation", "--organisation", "acme-bv")
	id := openCase(t, "--initiated-by", "organisation", "--organisation", "acme-bv")
	for _, c := range []string{other, id} {
		mustKoers(t, "case", "start-reintegration", c, "--sick-reported-on", "2026-01-02")
		mustKoers(t, "case", "grant-consent", c, "--recipient-kind", "agency", "--recipient", "reintegra", "--scopes", "reintegration,progress")
	}
	mustKoers(t, "case", "assign-agency", id, "--agency", "reintegra")
	mustKoers(t, "case", "checkpoint", id, "--kind", "problem-analysis", "--held-on", "2026-02-10")

	// The feed holds the assigned case only, from its assignment on.
	f := startFeed(t)
	first, second := f.next(t), f.next(t)
	firstToken, firstCase, firstType := parseFeedLine(t, first)
	secondToken, secondCase, secondType := parseFeedLine(t, second)
	if firstCase != id || firstType != "ReintegrationAgencyAssigned" || secondCase != id || secondType != "ReintegrationCheckpointRecorded" {
		t.Errorf("the feed began with\n  %s\n  %s\nwant the assignment and the checkpoint of case %s", first, second, id)
	}
	if firstToken == secondToken {
		t.Errorf("two events share resume token %s", firstToken)
	}
	rest, stderr, err := f.stop(t)
	if err != nil {
		t.Errorf("koers feed ended by Ctrl-C: %v, want a clean exit", err)
	}
	if len(rest) != 0 {
		t.Errorf("the feed printed more than the case's two events: %q", rest)
	}
	if got := lastToken(t, stderr); got != secondToken {
		t.Errorf("stderr gives resume token %s, want the last event's %s", got, secondToken)
	}

	// Each delivery is in the audit trail, naming the event.
	deliveries := lines(mustKoers(t, "audit", "--action", "feed-deliver"))
	if len(deliveries) != 2 || !regexp.MustCompile(`agency-reintegra \(agency\)  feed-deliver .* case `+id+`  event [0-9a-f-]{36} at position \d+$`).MatchString(deliveries[0]) {
		t.Errorf("the audit trail's deliveries:\n%s", strings.Join(deliveries, "\n"))
	}

	// The real command, stopped by a real Ctrl-C, exits 0 and says where
	// to resume.
	if code, stdout, stderr := interruptedFeed(t, 2); code != 0 || len(stdout) != 2 || stdout[1] != second || lastToken(t, stderr) != secondToken {
		t.Errorf("koers feed in its own process, interrupted after two events: exit %d, printed %q, stderr %q", code, stdout, stderr)
	}

	// Resuming after the last event: the next thing printed is the event
	// recorded since, not a repeat.
	mustKoers(t, "case", "checkpoint", id, "--kind", "action-plan", "--held-on", "2026-02-24")
	g := startFeed(t, "--resume-token", secondToken, "--case-id", id, "--json")
	var resp feedv1.SubscribeResponse
	if err := protojson.Unmarshal([]byte(g.next(t)), &resp); err != nil {
		t.Fatalf("koers feed --json printed no SubscribeResponse: %v", err)
	}
	var checkpoint casev1.ReintegrationCheckpointRecorded
	if resp.GetEvent().GetType() != "koers.case.v1.ReintegrationCheckpointRecorded" || proto.Unmarshal(resp.GetEvent().GetData(), &checkpoint) != nil ||
		checkpoint.GetKind() != casev1.CheckpointKind_CHECKPOINT_KIND_ACTION_PLAN {
		t.Errorf("resumed after %s, the feed printed %v, want the action plan checkpoint", secondToken, &resp)
	}
	if _, stderr, err := g.stop(t); err != nil || lastToken(t, stderr) != resp.GetResumeToken() {
		t.Errorf("the resumed feed ended with %v and stderr %q, want a clean exit giving token %s", err, stderr, resp.GetResumeToken())
	}

	admin := mintToken(t, dir, authn.Principal{Subject: "admin-1", Tenant: "acme", Roles: []authn.Role{authn.RoleAdmin}})
	h := startFeed(t, "--token", admin)
	if _, stderr, err := h.wait(t); err == nil || !strings.Contains(err.Error(), "role admin may not call /koers.feed.v1.FeedService/Subscribe") || !strings.Contains(stderr, "no event received") {
		t.Errorf("koers feed with an admin's token: %v, stderr %q; want the permission refused", err, stderr)
	}
}

func TestFeedNeedsATokenOrTheAgencyToMintOne(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		tenant, agency string
		want           string
	}{
		{"acme", "", "no --token (KOERS_TOKEN) given: give an agency's token, or --tenant and --agency"},
		{"", "reintegra", "no --token (KOERS_TOKEN) given"},
		{"Acme", "reintegra", `--tenant "Acme" must be 1 to`},
		{"acme", "re integra", `--agency "re integra" must be 1 to 63 lower-case letters`},
		{"acme", "reintegra", "no local development issuer"},
	} {
		c := feedCmd{endpoint: endpoint{Data: dir}, Tenant: tc.tenant, Agency: tc.agency}
		if _, err := c.token(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("koers feed --tenant %q --agency %q: %v, want an error saying %q", tc.tenant, tc.agency, err, tc.want)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("refusing the flags left %v in the data folder (%v)", entries, err)
	}
}

func TestFeedMintsAnAgencyToken(t *testing.T) {
	dir := t.TempDir()
	if _, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), true); err != nil {
		t.Fatal(err)
	}
	c := feedCmd{endpoint: endpoint{Data: dir}, Tenant: "acme", Agency: "reintegra"}
	token, err := c.token()
	if err != nil {
		t.Fatal(err)
	}
	p, err := localAuthenticator(t, dir).ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "agency-reintegra" || p.Tenant != "acme" || !p.Has(authn.RoleAgency) || len(p.Roles) != 1 || p.AgencyID != "reintegra" {
		t.Errorf("koers feed minted a token for %+v, want agency reintegra of acme alone", p)
	}
}
