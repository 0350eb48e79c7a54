package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/node"
	"github.com/koers-io/koers/services/authn"
)

// The tests here run the real command in a child process: the test binary
// re-executes itself with runMainEnv set, and TestMain hands over to main.
const runMainEnv = "KOERS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"koers"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// servingLine is the log line that says where the gRPC server listens.
var servingLine = regexp.MustCompile(`koers is serving.* grpc=(\S+)`)

// metricsLine is the log line that says where metrics are served.
var metricsLine = regexp.MustCompile(`serving metrics.* addr=(\S+)`)

type serveProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *strings.Builder
	done   chan error
}

// startServe runs `koers serve` on dir with free ports and waits until it
// says it is serving.
func startServe(t *testing.T, dir string, extraEnv ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, stderr: &strings.Builder{}, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.WriteString(line + "\n")
			if m := servingLine.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-found:
		return p
	case err := <-p.done:
		t.Fatalf("koers serve exited before serving: %v\n%s", err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("koers serve did not say it was serving\n%s", p.stderr)
	}
	return nil
}

// stop sends SIGINT, as Ctrl-C does, and returns the exit error.
func (p *serveProcess) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("koers serve did not stop after SIGINT\n%s", p.stderr)
		return nil
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestServeAnswersHealthAndReflectionAndStopsCleanlyOnInterrupt(t *testing.T) {
	dir := t.TempDir()
	for round := 1; round <= 2; round++ { // the second round starts on what the first left
		p := startServe(t, dir)
		conn := dial(t, p.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("round %d: health check: %v", round, err)
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("round %d: health status %v, want SERVING", round, resp.Status)
		}
		// Health answers anyone; everything else, reflection included,
		// wants a token (here of the local development issuer that serve
		// created in the data folder).
		if _, err := reflectionStream(ctx, conn); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("round %d: reflection without a token: %v, want Unauthenticated", round, err)
		}
		issuer, err := authn.OpenLocalIssuer(node.LocalIssuerDir(dir), false)
		if err != nil {
			t.Fatalf("round %d: serve made no local issuer: %v", round, err)
		}
		token, err := issuer.Mint(authn.Principal{Subject: "ops", Tenant: "acme", Roles: []authn.Role{authn.RoleAdmin}}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		if services := listServices(authed, t, conn); !contains(services, "grpc.health.v1.Health") {
			t.Fatalf("round %d: reflection lists %v, without the health service", round, services)
		}
		cancel()
		if m := metricsLine.FindStringSubmatch(p.stderr.String()); m == nil {
			t.Fatalf("round %d: serve did not say where it serves metrics:\n%s", round, p.stderr)
		} else if body := httpGet(t, "http://"+m[1]+"/metrics"); !strings.Contains(body, "koers_projection") {
			t.Fatalf("round %d: /metrics has no projection metrics:\n%.500s", round, body)
		}
		if err := p.stop(t); err != nil {
			t.Fatalf("round %d: exit after SIGINT: %v\n%s", round, err, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "stopped cleanly") {
			t.Fatalf("round %d: no clean stop in the log:\n%s", round, p.stderr)
		}
	}
}

func TestServeRefusesADataFolderInUse(t *testing.T) {
	dir := t.TempDir()
	first := startServe(t, dir)
	second := exec.Command(os.Args[0], "serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	second.Env = append(os.Environ(), runMainEnv+"=1")
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second koers serve on the same data folder: %v, want a failure\n%s", err, out)
	}
	if !strings.Contains(string(out), "in use") {
		t.Fatalf("second koers serve did not say the folder is in use:\n%s", out)
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("first koers serve after the refused second: %v\n%s", err, first.stderr)
	}
}

func TestFlagsReadEnvironmentVariables(t *testing.T) {
	dir := t.TempDir()
	// --data comes from KOERS_DATA only: the command line names none.
	cmd := exec.Command(os.Args[0], "serve", "--grpc-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "KOERS_DATA="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(dir + "/events.db"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("KOERS_DATA was not used: no events.db in it")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHelpDescribesEveryCommand(t *testing.T) {
	out, err := runKoers(t, "--help")
	if err != nil {
		t.Fatalf("koers --help: %v\n%s", err, out)
	}
	if !strings.Contains(out, "serve") {
		t.Fatalf("koers --help does not list serve:\n%s", out)
	}
	out, err = runKoers(t, "serve", "--help")
	if err != nil {
		t.Fatalf("koers serve --help: %v\n%s", err, out)
	}
	for _, flag := range []string{"--data", "--grpc-addr", "--nats-url", "KOERS_DATA"} {
		if !strings.Contains(out, flag) {
			t.Errorf("koers serve --help does not mention %s", flag)
		}
	}
}

func runKoers(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func listServices(ctx context.Context, t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	resp, err := reflectionStream(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	return names
}

// reflectionStream asks server reflection for the list of services.
func reflectionStream(ctx context.Context, conn *grpc.ClientConn) (*reflectionpb.ServerReflectionResponse, error) {
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend()
	req := &reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}
	if err := stream.Send(req); err != nil {
		// A refused stream ends before the request is sent: its
		// status comes with Recv.
		if errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
		return nil, err
	}
	return stream.Recv()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
