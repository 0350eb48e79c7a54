package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
)

// exampleAccounts returns the agency accounts example of
// deploy/nats/nats.conf, uncommented.
func exampleAccounts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "# BEGIN agency accounts example\n")
	block, _, ok2 := strings.Cut(rest, "# END agency accounts example")
	if !ok || !ok2 {
		t.Fatal("deploy/nats/nats.conf has no agency accounts example between BEGIN and END lines")
	}
	var b strings.Builder
	for line := range strings.Lines(block) {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		b.WriteString(line)
	}
	return b.String()
}

// The example for an external cluster works as documented: the agency
// reads its feed through its consumer, and is refused the event stream.
func TestNATSConfAgencyExampleIsolatesTheAgency(t *testing.T) {
	t.Setenv("NATS_KOERS_PASSWORD", "koers-secret")
	t.Setenv("NATS_AGENCY_ACME_REINTEGRA_PASSWORD", "agency-secret")
	conf := fmt.Sprintf("listen: 127.0.0.1:-1\njetstream { store_dir: %q }\n%s", t.TempDir(), exampleAccounts(t))
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	found := false
	for _, u := range opts.Users {
		if u.Username == "reintegra" {
			found = true
			if diff := cmp.Diff(bus.AgencyPermissions("acme", "reintegra"), u.Permissions); diff != "" {
				t.Errorf("the example's permissions differ from bus.AgencyPermissions (-bus +example):\n%s", diff)
			}
		}
	}
	if !found {
		t.Error("the example has no user reintegra")
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the example server did not start")
	}

	ctx := context.Background()
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("koers", "koers-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureEventStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureAgencyStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureAgencyConsumer(ctx, js, "acme", "reintegra"); err != nil {
		t.Fatal(err)
	}
	mine, theirs := bus.AgencySubject("acme", "reintegra", "c1"), bus.AgencySubject("acme", "werkfit", "c2")
	for _, s := range []string{theirs, mine} {
		if _, err := js.Publish(ctx, s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}

	a := agencyServer{users: map[string]bus.AgencyUser{"reintegra": {Tenant: "acme", Agency: "reintegra", Username: "reintegra"}}}
	anc, v := a.connectAgencyTo(t, srv.ClientURL(), "reintegra", "agency-secret")
	ajs, err := jetstream.New(anc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ajs.Consumer(ctx, bus.AgencyStreamName, bus.AgencyConsumerName("acme", "reintegra"))
	if err != nil {
		t.Fatalf("binding to its consumer: %v", err)
	}
	batch, err := c.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("acknowledging: %v", err)
		}
	}
	if diff := cmp.Diff([]string{mine}, got); diff != "" {
		t.Errorf("fetched (-want +got):\n%s", diff)
	}
	v.refused(t, "subscribing to the event stream", "koers.events.>", func(ctx context.Context) error {
		sub, err := anc.SubscribeSync("koers.events.>")
		if err != nil {
			return err
		}
		_, err = sub.NextMsgWithContext(ctx)
		return err
	})
}
