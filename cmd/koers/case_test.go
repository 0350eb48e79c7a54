package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/koers-io/koers/node"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// koers runs the command line with args in the process and returns what it
// printed.
func koers(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var c cli
	var out bytes.Buffer
	parser, err := newParser(context.Background(), &c, &out)
	if err != nil {
		t.Fatalf("building the command line: %v", err)
	}
	k, err := parser.Parse(args)
	if err != nil {
		return "", err
	}
	err = run(k, &c)
	return out.String(), err
}

func TestCaseCommandsWalkATrajectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, err := node.Start(ctx, node.Config{DataDir: dir, GRPCAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	t.Setenv("KOERS_ADDR", n.GRPCAddr())
	// No KOERS_TOKEN: the commands mint their tokens with the node's local
	// development issuer, as on the machine of a koers serve.
	t.Setenv("KOERS_DATA", dir)
	t.Setenv("KOERS_TENANT", "demo-centre")
	t.Setenv("KOERS_ACTOR", "coach-anna")
	t.Setenv("KOERS_LOG_LEVEL", "error")

	must := func(args ...string) string {
		t.Helper()
		out, err := koers(t, args...)
		if err != nil {
			t.Fatalf("koers %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	out := must("case", "open", "--client-id", "client-9", "--given-name", "Sanne", "--family-name", "de Boer",
		"--initiated-by", "organisation", "--organisation", "acme-bv", "--context", "mismatch", "--question", "problem-case",
		"--opened-on", "2025-03-03", "--request-id", "open-1")
	m := regexp.MustCompile(`case ([0-9a-f-]{36}), revision 0`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("open printed %q, without the case ID", out)
	}
	id := m[1]
	must("case", "intake", id, "--question-type", "choice", "--reason-for-coming", "Vastgelopen", "--held-on", "2025-03-10",
		"--warning-signals", "overload,anxiety", "--willingness", "4", "--capacity", "2")
	must("case", "reclassify", id, "--to", "counseling", "--reason", "disguised-question")
	must("case", "session", id, "--kind", "coaching", "--minutes", "60", "--notes", "Gesprek over angst voor verandering", "--held-on", "2025-03-17")
	must("case", "agree-plan", id, "--agreed-on", "2025-03-20", "--review-on", "2025-06-20", "--goal", "Keuze maken|gesprekken voeren|2025-06-01")
	must("case", "grant-consent", id, "--recipient-kind", "employer", "--recipient", "acme-bv", "--scopes", "progress,outcome")
	must("case", "refer", id, "--target", "outside-professional", "--reason", "warning-signals", "--details", "Huisarts")
	must("case", "close", id, "--outcome", "referred", "--closed-on", "2025-04-01")

	// A retry with the same request ID answers as before.
	if again := must("case", "open", "--client-id", "client-9", "--given-name", "Sanne", "--family-name", "de Boer",
		"--initiated-by", "organisation", "--organisation", "acme-bv", "--context", "mismatch", "--question", "problem-case",
		"--opened-on", "2025-03-03", "--request-id", "open-1"); again != out {
		t.Errorf("retried open printed %q, the first %q", again, out)
	}

	shown := must("case", "show", id)
	for _, want := range []string{
		"Stage:          closed",
		"Sanne de Boer",
		"choice → counseling (disguised-question)",
		"warning signals overload, anxiety",
		"Gesprek over angst voor verandering",
		"1. Keuze maken — gesprekken voeren (by 2025-06-01)",
		"employer acme-bv: progress, outcome",
		"ReportingConsentGranted",
		"Huisarts",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("show lacks %q:\n%s", want, shown)
		}
	}
	var asJSON map[string]any
	if err := json.Unmarshal([]byte(must("case", "show", id, "--json")), &asJSON); err != nil {
		t.Errorf("show --json is not JSON: %v", err)
	}

	_, err = koers(t, "case", "session", id, "--kind", "coaching", "--minutes", "30")
	if err == nil || !strings.Contains(err.Error(), "CASE_CLOSED") {
		t.Errorf("a session on the closed case: %v, want the rule CASE_CLOSED named", err)
	}
	_, err = koers(t, "case", "session", id, "--kind", "coaching", "--minutes", "0")
	if err == nil || !strings.Contains(err.Error(), "duration_minutes") {
		t.Errorf("a session of 0 minutes: %v, want the field named", err)
	}
	if _, err := koers(t, "case", "erase", id, "--reason", "client-request"); err == nil {
		t.Error("erase without --yes went ahead")
	}
	must("case", "erase", id, "--reason", "client-request", "--yes")
	if shown := must("case", "show", id); strings.Contains(shown, "Sanne") || !strings.Contains(shown, "[erased]") {
		t.Errorf("after erasure show prints:\n%s", shown)
	}
}

func TestEnumFlagsTakeEveryShortName(t *testing.T) {
	enums := casev1.File_koers_case_v1_types_proto.Enums()
	for i := 0; i < enums.Len(); i++ {
		desc := enums.Get(i)
		for _, name := range enumNames(desc) {
			v := desc.Values().ByName(protoreflect.Name(enumPrefix(desc) + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))))
			if v == nil || shortName(desc, v.Number()) != name {
				t.Errorf("%s: short name %q does not lead back to its value", desc.Name(), name)
			}
		}
	}
	if v, err := parseEnum[casev1.QuestionType]("counseling"); err != nil || v != casev1.QuestionType_QUESTION_TYPE_COUNSELING {
		t.Errorf("parseEnum(counseling) = %v, %v", v, err)
	}
	if v, err := parseEnum[casev1.OutplacementPhase]("MARKET_APPROACH"); err != nil || v != casev1.OutplacementPhase_OUTPLACEMENT_PHASE_MARKET_APPROACH {
		t.Errorf("parseEnum(MARKET_APPROACH) = %v, %v", v, err)
	}
	for _, bad := range []string{"unspecified", "", "choise"} {
		if _, err := parseEnum[casev1.QuestionType](bad); err == nil {
			t.Errorf("parseEnum(%q) took it", bad)
		}
	}
}

func TestEveryCommandAndFlagHasHelp(t *testing.T) {
	var c cli
	parser, err := newParser(context.Background(), &c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		if n.Type == kong.CommandNode && strings.TrimSpace(n.Help) == "" {
			t.Errorf("command %q has no help", n.FullPath())
		}
		for _, f := range n.Flags {
			if strings.TrimSpace(f.Help) == "" {
				t.Errorf("flag --%s of %q has no help", f.Name, n.FullPath())
			}
		}
		for _, p := range n.Positional {
			if strings.TrimSpace(p.Help) == "" {
				t.Errorf("argument %s of %q has no help", p.Name, n.FullPath())
			}
		}
		for _, child := range n.Children {
			walk(child)
		}
	}
	walk(parser.Model.Node)
	if len(parser.Model.Node.Children) < 2 {
		t.Fatal("the command tree has no commands")
	}
}
