package casesvc_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/koers-io/koers/eventstore"
	"github.com/koers-io/koers/eventstore/sqlite"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

// filesHolding returns, for each needle, the files under dir that contain
// it: every file, the SQLite database and its WAL, JetStream's blocks and
// indexes, the keys.
func filesHolding(t *testing.T, dir string, needles ...[]byte) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for _, n := range needles {
			if bytes.Contains(b, n) {
				found[string(n)] = append(found[string(n)], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return found
}

// keyFile is the file of the data key that sealed the case's client.
func (tn *testNode) keyFile(caseID string) string {
	tn.t.Helper()
	opened := new(casev1.CaseOpened)
	if err := proto.Unmarshal(tn.events(caseID)[0].Data, opened); err != nil {
		tn.t.Fatal(err)
	}
	id := opened.GetClient().GetKeyId()
	return filepath.Join(tn.dir, "keys", id[:2], id+".key")
}

func TestErasureLeavesNoPlaintextAndNoKeyInTheDataFolder(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir)
	ctx := as(tenant, "coach-anna")
	c := tn.client

	// Distinctive plaintexts of the client to erase, of another client, and
	// a non-personal text that must be found (so the search can see).
	secrets := [][]byte{[]byte("Zwaantje"), []byte("Quispel-Vandermolen"), []byte("xylofoonklanken"),
		[]byte("Waarom ik hier ben: pelikaan"), []byte("Word kapitein op de Waddenzee")}
	other := []byte("Bartholomeus")
	visible := []byte("Afdeling-Kwartelkoning")

	erased, kept := uuid.NewString(), uuid.NewString()
	mustDo := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	open := openRequest(erased, "open")
	open.Client = &casev1.ClientDetails{GivenName: string(secrets[0]), FamilyName: string(secrets[1]), Email: "zq@example.nl"}
	open.OrganisationId, open.Department = "acme-bv", string(visible)
	mustDo(c.OpenCase(ctx, open))
	mustDo(c.CompleteIntake(ctx, &casev1.CompleteIntakeRequest{CaseId: erased, RequestId: "intake", HeldOn: day(2025, 2, 1),
		QuestionType: casev1.QuestionType_QUESTION_TYPE_LIFE, Answers: &casev1.IntakeAnswers{ReasonForComing: string(secrets[3])}}))
	notes := session(erased, "session")
	notes.Notes = "Cliënt hoort " + string(secrets[2]) + " in het hoofd."
	mustDo(c.RecordSession(ctx, notes))
	mustDo(c.AgreeDevelopmentPlan(ctx, &casev1.AgreeDevelopmentPlanRequest{CaseId: erased, RequestId: "plan", AgreedOn: day(2025, 3, 1),
		ReviewOn: day(2025, 6, 1), Goals: []*casev1.DevelopmentGoal{{Description: string(secrets[4]), Actions: "vaarbewijs"}}}))
	keep := openRequest(kept, "open")
	keep.ClientId = "client-bartholomeus"
	keep.Client = &casev1.ClientDetails{GivenName: string(other), FamilyName: "Ypsilanti"}
	mustDo(c.OpenCase(ctx, keep))

	before, err := c.GetCase(ctx, &casev1.GetCaseRequest{CaseId: erased})
	if err != nil {
		t.Fatal(err)
	}
	if got := before.GetCase().GetClient().GetClientDetails().GetGivenName(); got != string(secrets[0]) {
		t.Fatalf("before erasure the client's given name reads %q", got)
	}
	if got := before.GetHistory()[2].GetPersonalData().GetNote().GetText(); got != notes.Notes {
		t.Fatalf("before erasure the session notes read %q", got)
	}
	if got := before.GetCase().GetDevelopmentPlan().GetGoals().GetDevelopmentGoals().GetGoals()[0].GetDescription(); got != string(secrets[4]) {
		t.Fatalf("before erasure the plan's goal reads %q", got)
	}
	tn.relayed(tenant, erased, tn.events(erased))
	keyFile := tn.keyFile(erased)
	keptKeyFile := tn.keyFile(kept)
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("the client's wrapped key is not where expected: %v", err)
	}

	checkFolder := func(when string, wantVisibleIn ...string) {
		t.Helper()
		found := filesHolding(t, dir, append(slices.Clone(secrets), other, visible, key)...)
		for _, s := range append(slices.Clone(secrets), other) {
			if files := found[string(s)]; len(files) > 0 {
				t.Errorf("%s: plaintext %q found in %v", when, s, files)
			}
		}
		for _, prefix := range wantVisibleIn {
			if !slices.ContainsFunc(found[string(visible)], func(f string) bool { return filepath.HasPrefix(f, prefix) }) {
				t.Errorf("%s: the non-personal %q is in no file under %s (found in %v): the search cannot see events there", when, visible, prefix, found[string(visible)])
			}
		}
	}
	checkFolder("running")
	tn.stop() // JetStream and SQLite flush everything to their files
	checkFolder("stopped", "events.db", "nats")

	tn = startNode(t, dir)
	if _, err := tn.client.EraseClientData(ctx, &casev1.EraseClientDataRequest{CaseId: erased, RequestId: "erase",
		Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST}); err != nil {
		t.Fatalf("erasing: %v", err)
	}
	after, err := tn.client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: erased})
	if err != nil {
		t.Fatalf("GetCase after erasure: %v", err)
	}
	erasedStatus := casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_ERASED
	if got := after.GetCase(); got.GetStage() != casev1.Stage_STAGE_ERASED || got.GetClient().GetStatus() != erasedStatus ||
		got.GetClient().GetClientDetails() != nil || got.GetIntake().GetAnswers().GetStatus() != erasedStatus ||
		got.GetDevelopmentPlan().GetGoals().GetStatus() != erasedStatus {
		t.Errorf("after erasure the case shows stage %s, client %v, answers %v, goals %v",
			got.GetStage(), got.GetClient(), got.GetIntake().GetAnswers(), got.GetDevelopmentPlan().GetGoals())
	}
	for _, h := range after.GetHistory() {
		if pd := h.GetPersonalData(); pd != nil && (pd.GetStatus() != erasedStatus || pd.GetPlaintext() != nil) {
			t.Errorf("after erasure %s shows its %s as %v", h.GetEventType(), pd.GetField(), pd)
		}
	}
	if got := after.GetCase(); got.GetDepartment() != string(visible) || got.GetSessions().GetCount() != 1 ||
		got.GetIntake().GetQuestionType() != casev1.QuestionType_QUESTION_TYPE_LIFE {
		t.Errorf("after erasure the case lost what was not personal: department %q, %d sessions, question %s",
			got.GetDepartment(), got.GetSessions().GetCount(), got.GetIntake().GetQuestionType())
	}
	code, _, reason := statusOf(func() error { _, err := tn.client.RecordSession(ctx, session(erased, "late")); return err }())
	if code != codes.FailedPrecondition || reason != "CASE_ERASED" {
		t.Errorf("a session on the erased case: %s %s, want FAILED_PRECONDITION CASE_ERASED", code, reason)
	}
	still, err := tn.client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: kept})
	if err != nil || still.GetCase().GetClient().GetClientDetails().GetGivenName() != string(other) {
		t.Errorf("the other client's case after erasure: %v, %v", still.GetCase().GetClient(), err)
	}
	if _, err := tn.client.RecordSession(ctx, func() *casev1.RecordSessionRequest { r := session(kept, "s"); r.Notes = "nog steeds"; return r }()); err != nil {
		t.Errorf("recording a session with notes on the other case: %v", err)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("the erased client's key file is still there (%v)", err)
	}
	if _, err := os.Stat(keptKeyFile); err != nil {
		t.Errorf("the other client's key file: %v", err)
	}
	tn.stop()
	found := filesHolding(t, dir, key)
	if files := found[string(key)]; len(files) > 0 {
		t.Errorf("the erased key's bytes are still in %v", files)
	}
	checkFolder("after erasure", "events.db", "nats")
}

func TestErasureInterruptedBeforeTheKeyHeals(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir)
	ctx := as(tenant, "coach-anna")
	journaled, loaded := uuid.NewString(), uuid.NewString()
	for _, id := range []string{journaled, loaded} {
		r := openRequest(id, "open")
		r.ClientId = "client-" + id // a key each
		if _, err := tn.client.OpenCase(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]string{journaled: tn.keyFile(journaled), loaded: tn.keyFile(loaded)}
	tn.stop()

	// What a stop between the two writes of an erasure leaves: the event
	// stored, the key still on disk; for one case the journal entry too.
	store, err := sqlite.Open(filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{journaled, loaded} {
		body, _ := proto.Marshal(&casev1.ClientDataErased{Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST})
		meta, _ := proto.Marshal(&eventv1.Metadata{TenantId: tenant, CaseId: id, RequestId: "erase", SchemaVersion: 1})
		if _, err := store.Append(context.Background(), "case-"+id, eventstore.Exact(0), eventstore.EventData{
			ID: uuid.New(), Type: "koers.case.v1.ClientDataErased", Data: body, Metadata: meta,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "erasures", "case-"+journaled), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tn = startNode(t, dir)
	if _, err := os.Stat(keys[journaled]); !os.IsNotExist(err) {
		t.Errorf("after a restart the journaled erasure's key is still there (%v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "erasures")); len(entries) != 0 {
		t.Errorf("the erasure journal still holds %d entries", len(entries))
	}
	got, err := tn.client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: loaded})
	if err != nil {
		t.Fatal(err)
	}
	if st := got.GetCase().GetClient().GetStatus(); st != casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_ERASED {
		t.Errorf("the erased case shows its client as %s", st)
	}
	if _, err := os.Stat(keys[loaded]); !os.IsNotExist(err) {
		t.Errorf("after the case was loaded its key is still there (%v)", err)
	}
}

func TestErasureCoversEveryCaseOfTheClient(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := as(tenant, "coach-anna")
	first, second := uuid.NewString(), uuid.NewString()
	for i, id := range []string{first, second} {
		r := openRequest(id, "open")
		r.ClientId = "client-twice"
		r.Client.GivenName = []string{"Eerste", "Tweede"}[i]
		if _, err := tn.client.OpenCase(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tn.client.EraseClientData(ctx, &casev1.EraseClientDataRequest{CaseId: first, RequestId: "erase",
		Reason: casev1.ErasureReason_ERASURE_REASON_CLIENT_REQUEST}); err != nil {
		t.Fatal(err)
	}
	got, err := tn.client.GetCase(ctx, &casev1.GetCaseRequest{CaseId: second})
	if err != nil {
		t.Fatal(err)
	}
	if st := got.GetCase().GetClient().GetStatus(); st != casev1.PersonalDataStatus_PERSONAL_DATA_STATUS_ERASED {
		t.Errorf("the client's other case shows their details as %s", st)
	}
	if got.GetCase().GetStage() != casev1.Stage_STAGE_OPENED {
		t.Errorf("the client's other case is %s; it records no erasure of its own", got.GetCase().GetStage())
	}
	// Work without personal data goes on; personal data cannot be recorded.
	if _, err := tn.client.RecordSession(ctx, session(second, "plain")); err != nil {
		t.Errorf("a session without notes on the other case: %v", err)
	}
	head := tn.head()
	withNotes := session(second, "with-notes")
	withNotes.Notes = "notitie"
	_, err = tn.client.RecordSession(ctx, withNotes)
	reopen := openRequest(uuid.NewString(), "open-again")
	reopen.ClientId = "client-twice"
	_, err2 := tn.client.OpenCase(ctx, reopen)
	for _, err := range []error{err, err2} {
		if code, _, reason := statusOf(err); code != codes.FailedPrecondition || reason != "CLIENT_KEY_ERASED" {
			t.Errorf("personal data for the erased client: %s %s, want FAILED_PRECONDITION CLIENT_KEY_ERASED", code, reason)
		}
	}
	if tn.head() != head {
		t.Errorf("refused commands moved the store head from %d to %d", head, tn.head())
	}
}
