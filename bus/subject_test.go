package bus_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/koers-io/koers/bus"
)

func TestSubjectSplitsStreamIntoCategoryAndID(t *testing.T) {
	tests := []struct {
		name           string
		tenant, stream string
		want           string
	}{
		{"case stream", "acme", "case-0b6e3c1c-8d2f-4a57-9a53-3a3f6b0d6e11", "koers.events.acme.case.0b6e3c1c-8d2f-4a57-9a53-3a3f6b0d6e11"},
		{"split at the first hyphen", "acme", "case-a-b", "koers.events.acme.case.a-b"},
		{"no hyphen: whole name is the category", "acme", "settings", "koers.events.acme.settings._"},
		{"missing tenant", "", "case-1", "koers.events._.case.1"},
		{"empty id", "acme", "case-", "koers.events.acme.case.%"},
		{"empty category", "acme", "-1", "koers.events.acme.%.1"},
		{"dots and wildcards", "a.b", "c*d-e>f.g", "koers.events.a%2Eb.c%2Ad.e%3Ef%2Eg"},
		{"the escape byte itself", "100%", "case-%41", "koers.events.100%25.case.%2541"},
		{"placeholder as a value", "_", "_-_", "koers.events.%5F.%5F.%5F"},
		{"underscore inside a value stays", "a_b", "c_d-e_f", "koers.events.a_b.c_d.e_f"},
		{"whitespace and control bytes", "a b", "c\td-e\nf\x7f", "koers.events.a%20b.c%09d.e%0Af%7F"},
		{"non-ASCII", "café", "zaak-ü", "koers.events.caf%C3%A9.zaak.%C3%BC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bus.Subject(tt.tenant, tt.stream); got != tt.want {
				t.Errorf("Subject(%q, %q) = %q, want %q", tt.tenant, tt.stream, got, tt.want)
			}
			tenant, stream, err := bus.ParseSubject(tt.want)
			if err != nil {
				t.Fatalf("ParseSubject(%q): %v", tt.want, err)
			}
			if diff := cmp.Diff([2]string{tt.tenant, tt.stream}, [2]string{tenant, stream}); diff != "" {
				t.Errorf("ParseSubject(%q) (-want +got):\n%s", tt.want, diff)
			}
		})
	}
}

func TestFiltersNameTenantCategoryAndStream(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{bus.TenantFilter("acme"), "koers.events.acme.>"},
		{bus.TenantFilter(""), "koers.events._.>"},
		{bus.TenantFilter("a.b"), "koers.events.a%2Eb.>"},
		{bus.CategoryFilter("acme", "case"), "koers.events.acme.case.*"},
		{bus.StreamFilter("acme", "case-1"), "koers.events.acme.case.1"},
		{bus.StreamFilter("acme", "settings"), "koers.events.acme.settings._"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("filter = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseSubjectRefusesWhatSubjectNeverMakes(t *testing.T) {
	tests := []struct {
		name, subject string
	}{
		{"other root", "koers.commands.acme.case.1"},
		{"root alone", "koers.events"},
		{"too few tokens", "koers.events.acme.case"},
		{"too many tokens", "koers.events.acme.case.1.x"},
		{"empty token", "koers.events..case.1"},
		{"escape cut short", "koers.events.acme.case.%4"},
		{"escape not hex", "koers.events.acme.case.%zz"},
		{"lower-case hex", "koers.events.a%2eb.case.1"},
		{"safe byte escaped", "koers.events.%41.case.1"},
		{"placeholder escaped inside a longer token", "koers.events.a%5F.case.1"},
		{"hyphen in category", "koers.events.acme.ca-se.1"},
		{"escaped hyphen in category", "koers.events.acme.ca%2Dse.1"},
		{"unescaped wildcard", "koers.events.acme.case.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, stream, err := bus.ParseSubject(tt.subject)
			if !errors.Is(err, bus.ErrBadSubject) {
				t.Errorf("ParseSubject(%q) = %q, %q, %v; want an error wrapping ErrBadSubject", tt.subject, tenant, stream, err)
			}
		})
	}
}

// FuzzSubjectRoundTrip checks that every tenant and stream name gives a
// subject of five valid tokens that reads back to the same pair.
func FuzzSubjectRoundTrip(f *testing.F) {
	for _, seed := range [][2]string{
		{"acme", "case-1"}, {"", ""}, {"_", "_"}, {"%", "-"}, {"a.b", "*->"},
		{"\x00\xff", "é-\t"}, {"%25", "x-%5F"}, {" ", "case- "},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, tenant, stream string) {
		subject := bus.Subject(tenant, stream)
		tokens := strings.Split(subject, ".")
		if len(tokens) != 5 {
			t.Fatalf("Subject(%q, %q) = %q has %d tokens, want 5", tenant, stream, subject, len(tokens))
		}
		for _, tok := range tokens {
			if tok == "" || strings.ContainsAny(tok, "*>") || strings.IndexFunc(tok, func(r rune) bool {
				return r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r)
			}) >= 0 {
				t.Fatalf("Subject(%q, %q) = %q has an invalid token %q", tenant, stream, subject, tok)
			}
		}
		gotTenant, gotStream, err := bus.ParseSubject(subject)
		if err != nil {
			t.Fatalf("ParseSubject(%q): %v", subject, err)
		}
		if gotTenant != tenant || gotStream != stream {
			t.Fatalf("ParseSubject(Subject(%q, %q)) = %q, %q", tenant, stream, gotTenant, gotStream)
		}
	})
}
