package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	"github.com/koers-io/koers/bus"
)

// deployDir is the repository's deploy folder, seen from this package.
const deployDir = "../../deploy"

// TestDeployFilesUseOnlyWhatTheBinaryHas ties the deploy files to the
// binary, which nothing else does: file by file, every koers subcommand,
// flag and KOERS_* variable they use must exist for the command they use it
// with, in the kong model the binary parses its command line with.
func TestDeployFilesUseOnlyWhatTheBinaryHas(t *testing.T) {
	c := newDeployChecker(t)
	files := deployFiles(t)
	if len(files) == 0 {
		t.Fatalf("no files under %s", deployDir)
	}
	var sawKoers bool
	for _, file := range files {
		t.Run(file.name, func(t *testing.T) {
			var problems []string
			if isYAML(file.name) {
				found, yamlProblems := c.checkYAML(file.name, file.data)
				sawKoers = sawKoers || found > 0
				problems = append(problems, yamlProblems...)
			}
			problems = append(problems, c.checkText(file.name, file.data)...)
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
	if !sawKoers {
		t.Errorf("no deploy file runs the koers image; the check checked nothing")
	}
}

// TestDeployCheckerCatchesWhatTheBinaryLacks shows the checker failing on
// what it exists to catch, with a message naming the file, the subcommand
// and the culprit.
func TestDeployCheckerCatchesWhatTheBinaryLacks(t *testing.T) {
	c := newDeployChecker(t)
	tests := []struct {
		name string
		file string
		yaml string
		want []string
	}{
		{
			name: "an unknown flag in a Compose command",
			file: "compose.yaml",
			yaml: `
services:
  relay:
    image: koers:dev
    command: ["relay", "--nats-url=nats://n:4222", "--relay-window=9", "--event-stream-replicas", "3"]
`,
			want: []string{`compose.yaml: services.relay: koers relay has no flag --relay-window`},
		},
		{
			name: "a flag of another subcommand",
			file: "compose.yaml",
			yaml: `
services:
  relay:
    image: registry.example.org/koers:1.0
    command: relay --grpc-addr 0.0.0.0:7400
`,
			want: []string{`compose.yaml: services.relay: koers relay has no flag --grpc-addr`},
		},
		{
			name: "an unknown KOERS_ variable in a Kubernetes container",
			file: "kubernetes/koers.yaml",
			yaml: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: koers-relay}
spec:
  template:
    spec:
      containers:
        - name: koers
          image: koers
          args: [relay, --event-stream-replicas=3]
          env:
            - name: KOERS_NATS_URL
              value: nats://n:4222
            - name: KOERS_GRPC_ADDR
              value: 0.0.0.0:7400
`,
			want: []string{`kubernetes/koers.yaml: Deployment/koers-relay spec.template.spec.containers[0]: koers relay has no environment variable KOERS_GRPC_ADDR`},
		},
		{
			name: "an unknown subcommand",
			file: "compose.yaml",
			yaml: `
services:
  worker:
    image: koers:dev
    command: [worker, --nats-url=nats://n:4222]
`,
			want: []string{`compose.yaml: services.worker: the koers command line [worker --nats-url=nats://n:4222] names no koers subcommand`},
		},
		{
			name: "a serve that would shrink the event stream to one replica",
			file: "compose.yaml",
			yaml: `
services:
  api:
    image: koers:dev
    command: [serve, --store=kurrentdb]
`,
			want: []string{`compose.yaml: services.api: koers serve runs with --event-stream-replicas 1 (its default); every part of a clustered deployment must ask for 3, or they resize the stream back and forth`},
		},
		{
			name: "a correct container",
			file: "compose.yaml",
			yaml: `
services:
  relay:
    image: koers:dev
    command: [relay, --log-format=json]
    environment:
      KOERS_NATS_URL: nats://n:4222
      KOERS_KURRENTDB_URL: esdb://k:2113
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := c.checkYAML(tt.file, []byte(tt.yaml))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}

	textTests := []struct {
		name string
		text string
		want []string
	}{
		{"an unknown flag in a shell line", "run it:\n  koers relay --nats-url tls://n:4222 \\\n    --kurrent-url esdb://k\n",
			[]string{`README.md:2: koers relay has no flag --kurrent-url`}},
		{"an unknown variable", "set KOERS_NATS_URL and KOERS_NATS_CREDS\n",
			[]string{`README.md:1: no koers command reads KOERS_NATS_CREDS`}},
		{"an unknown subcommand with flags", "`koers projecter --nats-url x`\n",
			[]string{`README.md:1: koers has no subcommand "projecter"`}},
		{"prose", "The koers binary runs koers serve (the API) and koers relay.\n", nil},
	}
	for _, tt := range textTests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.checkText("README.md", []byte(tt.text))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeployNATSConfig loads the NATS configuration in the nats-server
// version Koers embeds and checks the settings Koers depends on.
func TestDeployNATSConfig(t *testing.T) {
	path := filepath.Join(deployDir, "nats", "nats.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file reads per-node values from the environment, and certificate
	// files that only exist in the containers: give it both.
	for _, m := range regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(data), -1) {
		t.Setenv(m[1], "test-"+strings.ToLower(m[1]))
	}
	tlsDir := t.TempDir()
	writeTestCertificate(t, tlsDir)
	conf := strings.ReplaceAll(string(data), "/etc/nats/tls/", tlsDir+"/")
	if conf == string(data) {
		t.Fatalf("%s: no certificate under /etc/nats/tls/; the test no longer matches the file", path)
	}

	var opts server.Options
	if err := opts.ProcessConfigString(conf); err != nil {
		t.Fatalf("%s does not load in nats-server: %v", path, err)
	}
	got := natsSettings{
		MaxPayload:   opts.MaxPayload,
		JetStream:    opts.JetStream,
		SyncInterval: opts.SyncInterval,
		SyncAlways:   opts.SyncAlways,
		ClusterName:  opts.Cluster.Name,
		Routes:       len(opts.Routes),
		ClientTLS:    opts.TLSConfig != nil,
		RouteTLS:     opts.Cluster.TLSConfig != nil,
		RouteVerify:  opts.Cluster.TLSConfig != nil && opts.Cluster.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert,
		Users:        len(opts.Users),
		HTTPPort:     opts.HTTPPort,
	}
	want := natsSettings{
		MaxPayload:   bus.DefaultMaxPayload, // what the embedded server runs with
		JetStream:    true,
		SyncInterval: 0, // JetStream's default; deploy/README.md says why
		SyncAlways:   false,
		ClusterName:  "koers",
		Routes:       3,
		ClientTLS:    true,
		RouteTLS:     true,
		RouteVerify:  true,
		Users:        1,
		HTTPPort:     8222,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: settings differ (-want +got):\n%s", path, diff)
	}
}

type natsSettings struct {
	MaxPayload   int32
	JetStream    bool
	SyncInterval time.Duration
	SyncAlways   bool
	ClusterName  string
	Routes       int
	ClientTLS    bool
	RouteTLS     bool
	RouteVerify  bool
	Users        int
	HTTPPort     int
}

// TestDeployKubernetesManifestsAgree checks that the ConfigMap copy of
// nats.conf has not drifted from the file, and that the kustomization
// deploys every manifest.
func TestDeployKubernetesManifestsAgree(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(deployDir, "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(deployDir, "kubernetes")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var manifests []string
	var configMapHasConf bool
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := yamlDocuments(data)
		if err != nil {
			t.Fatalf("kubernetes/%s: %v", e.Name(), err)
		}
		for _, doc := range docs {
			m, _ := doc.(map[string]any)
			if m["kind"] == "Kustomization" {
				continue
			}
			if m["kind"] == "ConfigMap" && name(m) == "nats-config" {
				data, _ := m["data"].(map[string]any)
				if got, _ := data["nats.conf"].(string); got != string(conf) {
					t.Errorf("kubernetes/%s: ConfigMap nats-config differs from nats/nats.conf (-file +configmap):\n%s", e.Name(), cmp.Diff(string(conf), got))
				}
				configMapHasConf = true
			}
		}
		if e.Name() != "kustomization.yaml" {
			manifests = append(manifests, e.Name())
		}
	}
	if !configMapHasConf {
		t.Errorf("kubernetes/: no ConfigMap nats-config with nats.conf")
	}

	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("kubernetes/kustomization.yaml: %v", err)
	}
	slices.Sort(manifests)
	listed := slices.Sorted(slices.Values(k.Resources))
	if diff := cmp.Diff(manifests, listed); diff != "" {
		t.Errorf("kubernetes/kustomization.yaml lists other resources than the manifests in kubernetes/ (-files +listed):\n%s", diff)
	}
}

// deployFile is one file under deploy/, named relative to it.
type deployFile struct {
	name string
	data []byte
}

func deployFiles(t *testing.T) []deployFile {
	t.Helper()
	var files []deployFile
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(deployDir, path)
		if err != nil {
			return err
		}
		files = append(files, deployFile{name: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", deployDir, err)
	}
	return files
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// deployChecker checks deploy files against the command tree of the koers
// binary.
type deployChecker struct {
	root *kong.Node
	// envs are the variables any command reads.
	envs map[string]bool
}

func newDeployChecker(t *testing.T) *deployChecker {
	t.Helper()
	var c cli
	k, err := newParser(context.Background(), &c, io.Discard)
	if err != nil {
		t.Fatalf("building the command line: %v", err)
	}
	dc := &deployChecker{root: k.Model.Node, envs: map[string]bool{}}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, group := range n.AllFlags(false) {
			for _, f := range group {
				for _, env := range f.Envs {
					dc.envs[env] = true
				}
			}
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	walk(dc.root)
	if len(dc.envs) == 0 {
		t.Fatal("the koers command line reads no environment variables; the check would check nothing")
	}
	return dc
}

// subcommand returns the child command of n called name, or nil.
func subcommand(n *kong.Node, name string) *kong.Node {
	for _, ch := range n.Children {
		if ch.Type == kong.CommandNode && (ch.Name == name || slices.Contains(ch.Aliases, name)) {
			return ch
		}
	}
	return nil
}

// flag returns the flag of n or its ancestors called name (a long name
// without dashes, or one letter for a short flag), or nil.
func flag(n *kong.Node, name string) *kong.Flag {
	for _, group := range n.AllFlags(false) {
		for _, f := range group {
			if f.Name == name || slices.Contains(f.Aliases, name) || (len(name) == 1 && f.Short == rune(name[0])) {
				return f
			}
		}
	}
	return nil
}

// readsEnv reports whether n or its ancestors read variable env.
func readsEnv(n *kong.Node, env string) bool {
	for _, group := range n.AllFlags(false) {
		for _, f := range group {
			if slices.Contains(f.Envs, env) {
				return true
			}
		}
	}
	return false
}

// commandLine is what a koers command line says.
type commandLine struct {
	node  *kong.Node
	flags map[string]string // by flag name, as given
}

// parseArgs resolves the subcommand args name and checks their flags. It
// returns nil and a problem when args name no subcommand.
func (c *deployChecker) parseArgs(args []string) (*commandLine, []string) {
	if len(args) > 0 && (args[0] == "koers" || strings.HasSuffix(args[0], "/koers")) {
		args = args[1:]
	}
	n, i := c.root, 0
	for ; i < len(args); i++ {
		next := subcommand(n, args[i])
		if next == nil {
			break
		}
		n = next
	}
	if n == c.root {
		return nil, []string{fmt.Sprintf("the koers command line %v names no koers subcommand", args)}
	}
	cl := &commandLine{node: n, flags: map[string]string{}}
	var problems []string
	for ; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		f := flag(n, name)
		if f == nil {
			problems = append(problems, fmt.Sprintf("%s has no flag %s", n.FullPath(), strings.SplitN(arg, "=", 2)[0]))
			continue
		}
		if !hasValue && !f.IsBool() && !f.IsCounter() && i+1 < len(args) {
			i++
			value = args[i]
		}
		cl.flags[f.Name] = value
	}
	return cl, problems
}

// checkEnv checks the variables a container gives koers.
func checkEnv(cl *commandLine, env map[string]string) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if strings.HasPrefix(name, "KOERS_") && !readsEnv(cl.node, name) {
			problems = append(problems, fmt.Sprintf("%s has no environment variable %s", cl.node.FullPath(), name))
		}
	}
	return problems
}

// replicasFlag is the flag every part that creates the event stream takes;
// in a clustered deployment they must all ask for the same replica count.
const (
	replicasFlag    = "event-stream-replicas"
	replicasEnv     = "KOERS_EVENT_STREAM_REPLICAS"
	clusterReplicas = "3"
)

// checkReplicas checks that a part that creates the event stream asks for
// the cluster's replica count, by flag, by variable or by default.
func checkReplicas(cl *commandLine, env map[string]string) []string {
	f := flag(cl.node, replicasFlag)
	if f == nil {
		return nil
	}
	value, how := f.Default, "its default"
	if v, ok := env[replicasEnv]; ok {
		value, how = v, replicasEnv
	}
	if v, ok := cl.flags[f.Name]; ok {
		value, how = v, "the flag"
	}
	if value == clusterReplicas {
		return nil
	}
	return []string{fmt.Sprintf("%s runs with --%s %s (%s); every part of a clustered deployment must ask for %s, or they resize the stream back and forth",
		cl.node.FullPath(), replicasFlag, value, how, clusterReplicas)}
}

// checkYAML checks every container in a YAML file (Compose services and
// templates, Kubernetes containers) that runs the koers image. It returns
// how many it found and the problems, each prefixed with file and place.
func (c *deployChecker) checkYAML(file string, data []byte) (int, []string) {
	docs, err := yamlDocuments(data)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: %v", file, err)}
	}
	var found int
	var problems []string
	for _, doc := range docs {
		prefix := ""
		if m, ok := doc.(map[string]any); ok && m["kind"] != nil {
			prefix = fmt.Sprintf("%v/%s ", m["kind"], name(m))
		}
		walkContainers(doc, "", func(where string, ctr map[string]any) {
			if !isKoersImage(ctr["image"]) {
				return
			}
			found++
			place := file + ": " + prefix + where
			args := append(stringList(ctr["entrypoint"]), stringList(ctr["command"])...)
			args = append(args, stringList(ctr["args"])...)
			cl, ps := c.parseArgs(args)
			for _, p := range ps {
				problems = append(problems, place+": "+p)
			}
			if cl == nil {
				return
			}
			env := containerEnv(ctr)
			for _, p := range append(checkEnv(cl, env), checkReplicas(cl, env)...) {
				problems = append(problems, place+": "+p)
			}
		})
	}
	return found, problems
}

// yamlDocuments decodes every document of a YAML stream.
func yamlDocuments(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func name(m map[string]any) string {
	meta, _ := m["metadata"].(map[string]any)
	s, _ := meta["name"].(string)
	return s
}

// walkContainers calls fn for every map with an image: a Compose service
// (or x- template) or a Kubernetes container.
func walkContainers(v any, where string, fn func(where string, ctr map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["image"].(string); ok {
			fn(where, v)
			return
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkContainers(v[k], strings.TrimPrefix(where+"."+k, "."), fn)
		}
	case []any:
		for i, e := range v {
			walkContainers(e, fmt.Sprintf("%s[%d]", where, i), fn)
		}
	}
}

// isKoersImage reports whether image names the koers image, in any
// registry and at any tag: koers, koers:dev, registry.example.org/koers:1.
func isKoersImage(image any) bool {
	s, _ := image.(string)
	s, _, _ = strings.Cut(s, "@")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	s, _, _ = strings.Cut(s, ":")
	return s == "koers"
}

// stringList reads a command: a list of words, or a string split at
// white space as Compose does.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = fmt.Sprint(e)
		}
		return out
	}
	return nil
}

// containerEnv reads a container's variables: Compose's environment (a
// map or a list of NAME=value) or Kubernetes' env (a list of name/value).
// Values from secrets read as "".
func containerEnv(ctr map[string]any) map[string]string {
	env := map[string]string{}
	switch e := ctr["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = fmt.Sprint(v)
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(fmt.Sprint(item), "=")
			env[k] = v
		}
	}
	if list, ok := ctr["env"].([]any); ok {
		for _, item := range list {
			m, _ := item.(map[string]any)
			k, _ := m["name"].(string)
			v, _ := m["value"].(string)
			env[k] = v
		}
	}
	return env
}

var (
	envToken = regexp.MustCompile(`\bKOERS_[A-Z0-9_]+\b`)
	// trimWord strips what prose and Markdown put around a word.
	trimWord = "`'\"()[]{},;:."
)

// checkText checks koers command lines and KOERS_* variables in any text:
// shell lines in the README, comments, scripts. A line continued with a
// backslash is read with its continuation. Where a line names no command,
// a variable need only exist for some command.
func (c *deployChecker) checkText(file string, data []byte) []string {
	var problems []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		for strings.HasSuffix(strings.TrimSpace(line), `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(strings.TrimSpace(line), `\`) + " " + lines[i]
		}
		for _, env := range envToken.FindAllString(line, -1) {
			if !c.envs[env] && env != bus.DefaultStreamName && env != bus.AgencyStreamName {
				problems = append(problems, fmt.Sprintf("%s:%d: no koers command reads %s", file, lineNo, env))
			}
		}
		problems = append(problems, c.checkCommandsInLine(file, lineNo, line)...)
	}
	return problems
}

// checkCommandsInLine checks each "koers <command> [flags]" in one line.
// A word after koers that is no command is prose, unless a flag follows
// it.
func (c *deployChecker) checkCommandsInLine(file string, lineNo int, line string) []string {
	words := strings.Fields(line)
	var problems []string
	for i := 0; i < len(words); i++ {
		w := strings.Trim(words[i], trimWord)
		if w != "koers" && !strings.HasSuffix(w, "/koers") {
			continue
		}
		n := c.root
		j := i + 1
		for ; j < len(words); j++ {
			next := subcommand(n, strings.Trim(words[j], trimWord))
			if next == nil {
				break
			}
			n = next
			if strings.HasSuffix(words[j], "`") {
				break // the end of inline code
			}
		}
		if n == c.root {
			if j+1 < len(words) && strings.HasPrefix(words[j+1], "--") && !strings.HasPrefix(words[j], "-") {
				problems = append(problems, fmt.Sprintf("%s:%d: koers has no subcommand %q", file, lineNo, strings.Trim(words[j], trimWord)))
			}
			continue
		}
		for j++; j < len(words); j++ {
			w := words[j]
			if slices.Contains([]string{"|", "||", "&&", ";", "#", ">", "2>&1"}, w) {
				break
			}
			arg := strings.Trim(w, "`'\"(),")
			if strings.HasPrefix(arg, "--") && len(arg) > 2 {
				name, _, _ := strings.Cut(arg[2:], "=")
				if flag(n, name) == nil {
					problems = append(problems, fmt.Sprintf("%s:%d: %s has no flag --%s", file, lineNo, n.FullPath(), name))
				}
			}
			if strings.HasSuffix(w, "`") {
				break
			}
		}
		i = j - 1
	}
	return problems
}

// writeTestCertificate writes a self-signed CA certificate and key as
// tls.crt, tls.key and ca.crt into dir, for loading TLS configuration.
func writeTestCertificate(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nats"},
		DNSNames:              []string{"nats-0.nats", "nats-1.nats", "nats-2.nats"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for file, data := range map[string][]byte{
		"tls.crt": cert,
		"ca.crt":  cert,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
