package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/koers-io/koers/bus"
	"github.com/koers-io/koers/bus/bustest"
)

func TestEnsureAgencyStreamAppliesTheConfig(t *testing.T) {
	srv := bustest.StartServer(t)
	js := bustest.JetStream(t, srv)
	ctx := context.Background()

	for range 2 { // the second call updates in place
		s, err := bus.EnsureAgencyStream(ctx, js, 0)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := info.Config
		type view struct {
			Name       string
			Subjects   []string
			Storage    jetstream.StorageType
			Retention  jetstream.RetentionPolicy
			Replicas   int
			Duplicates time.Duration
			MaxMsgs    int64
			MaxBytes   int64
			MaxAge     time.Duration
			DenyDelete bool
		}
		got := view{c.Name, c.Subjects, c.Storage, c.Retention, c.Replicas, c.Duplicates, c.MaxMsgs, c.MaxBytes, c.MaxAge, c.DenyDelete}
		want := view{"KOERS_AGENCY_FEED", []string{"koers.agency.>"}, jetstream.FileStorage, jetstream.LimitsPolicy, 1, 2 * time.Minute, -1, -1, 0, true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("agency stream config (-want +got):\n%s", diff)
		}
	}
	// Three replicas need a cluster; a single server refuses them, which
	// shows the argument reaches the server.
	if _, err := bus.EnsureAgencyStream(ctx, js, 3); err == nil {
		t.Error("EnsureAgencyStream with 3 replicas on a single server succeeded")
	}
}

func TestAgencyNamesAreSingleTokensPerTenantAndAgency(t *testing.T) {
	tests := []struct {
		tenant, agency                   string
		subject, filter, consumer, inbox string
	}{
		{"acme", "reintegra", "koers.agency.acme.reintegra.c1", "koers.agency.acme.reintegra.*", "agency_acme_reintegra", "_INBOX_acme_reintegra"},
		{"a-b", "c", "koers.agency.a-b.c.c1", "koers.agency.a-b.c.*", "agency_a-b_c", "_INBOX_a-b_c"},
		{"a", "b-c", "koers.agency.a.b-c.c1", "koers.agency.a.b-c.*", "agency_a_b-c", "_INBOX_a_b-c"},
	}
	for _, tt := range tests {
		got := []string{
			bus.AgencySubject(tt.tenant, tt.agency, "c1"),
			bus.AgencyFilter(tt.tenant, tt.agency),
			bus.AgencyConsumerName(tt.tenant, tt.agency),
			bus.AgencyInboxPrefix(tt.tenant, tt.agency),
		}
		want := []string{tt.subject, tt.filter, tt.consumer, tt.inbox}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s/%s: subject, filter, consumer, inbox (-want +got):\n%s", tt.tenant, tt.agency, diff)
		}
		// A consumer name is one token without wildcards or path
		// separators (nats.go's and nats-server's rules).
		if name := got[2]; strings.ContainsAny(name, ".*> /\\\t\r\n") {
			t.Errorf("consumer name %q is not a valid JetStream name", name)
		}
	}
}

func TestAgencyConsumerConfigPinsTheAgencysFilter(t *testing.T) {
	c := bus.AgencyConsumerConfig("acme", "reintegra")
	if c.Durable != "agency_acme_reintegra" || c.FilterSubject != "koers.agency.acme.reintegra.*" ||
		len(c.FilterSubjects) != 0 || c.DeliverSubject != "" || c.AckPolicy != jetstream.AckExplicitPolicy ||
		c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("AgencyConsumerConfig = %+v; want a durable pull consumer agency_acme_reintegra on koers.agency.acme.reintegra.*, all messages, explicit acks", c)
	}
}

func TestAgencyPermissionsAreAnAllowListOfTheAgencysOwnSubjects(t *testing.T) {
	p := bus.AgencyPermissions("acme", "reintegra")
	if p.Publish == nil || p.Subscribe == nil {
		t.Fatalf("permissions %+v lack a publish or subscribe allow list", p)
	}
	wantPub := []string{
		"$JS.API.CONSUMER.INFO.KOERS_AGENCY_FEED.agency_acme_reintegra",
		"$JS.API.CONSUMER.MSG.NEXT.KOERS_AGENCY_FEED.agency_acme_reintegra",
		"$JS.ACK.KOERS_AGENCY_FEED.agency_acme_reintegra.>",
		"$JS.ACK.*.*.KOERS_AGENCY_FEED.agency_acme_reintegra.>",
	}
	if diff := cmp.Diff(wantPub, p.Publish.Allow); diff != "" {
		t.Errorf("publish allow list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"_INBOX_acme_reintegra.>"}, p.Subscribe.Allow); diff != "" {
		t.Errorf("subscribe allow list (-want +got):\n%s", diff)
	}
	if len(p.Publish.Deny) > 0 || len(p.Subscribe.Deny) > 0 || p.Response != nil {
		t.Errorf("permissions %+v have deny lists or response permissions; want an allow list only", p)
	}
}
