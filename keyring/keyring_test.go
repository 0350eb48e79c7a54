package keyring_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/koers-io/koers/keyring"
	eventv1 "github.com/koers-io/koers/proto/koers/event/v1"
)

func newKeyring(t *testing.T, dir string) *keyring.Keyring {
	t.Helper()
	master, _, err := keyring.LoadMasterKey(filepath.Join(dir, "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.Open(filepath.Join(dir, "keys"), master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealedDataOpensAfterReopen(t *testing.T) {
	dir := t.TempDir()
	sealed, err := newKeyring(t, dir).Seal("case-1", wrapperspb.String("Jan de Vries"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed.Ciphertext, []byte("Jan de Vries")) {
		t.Fatal("ciphertext holds the plaintext")
	}
	var got wrapperspb.StringValue
	if err := newKeyring(t, dir).Unseal(sealed, &got); err != nil {
		t.Fatalf("unseal after reopen: %v", err)
	}
	if got.Value != "Jan de Vries" {
		t.Fatalf("unsealed %q, want %q", got.Value, "Jan de Vries")
	}
}

func TestEraseMakesDataUnreadableAndKeyUncreatable(t *testing.T) {
	dir := t.TempDir()
	k := newKeyring(t, dir)
	sealed, err := k.Seal("case-2", wrapperspb.String("notes"))
	if err != nil {
		t.Fatal(err)
	}
	keyFiles := filesUnder(t, filepath.Join(dir, "keys"), ".key")
	if len(keyFiles) != 1 {
		t.Fatalf("key files before erasure: %v, want one", keyFiles)
	}
	if err := k.Erase("case-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyFiles[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("key file still there after erasure: %v", err)
	}
	for name, kr := range map[string]*keyring.Keyring{"same keyring": k, "reopened": newKeyring(t, dir)} {
		var got wrapperspb.StringValue
		if err := kr.Unseal(sealed, &got); !errors.Is(err, keyring.ErrErased) {
			t.Errorf("%s: unseal after erasure: %v, want ErrErased", name, err)
		}
		if _, err := kr.Seal("case-2", wrapperspb.String("again")); !errors.Is(err, keyring.ErrErased) {
			t.Errorf("%s: seal after erasure: %v, want ErrErased", name, err)
		}
	}
	if erased, err := k.Erased("case-2"); err != nil || !erased {
		t.Errorf("Erased = %v, %v; want true", erased, err)
	}
}

func TestOtherClientsSurviveAnErasure(t *testing.T) {
	k := newKeyring(t, t.TempDir())
	keep, err := k.Seal("case-a", wrapperspb.String("keep"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Seal("case-b", wrapperspb.String("erase")); err != nil {
		t.Fatal(err)
	}
	if err := k.Erase("case-b"); err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := k.Unseal(keep, &got); err != nil || got.Value != "keep" {
		t.Fatalf("other client's data: %q, %v", got.Value, err)
	}
}

func TestWrongMasterKeyCannotUnwrap(t *testing.T) {
	dir := t.TempDir()
	sealed, err := newKeyring(t, dir).Seal("case-3", wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyring.Open(filepath.Join(dir, "keys"), bytes.Repeat([]byte{7}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := other.Unseal(sealed, &got); err == nil {
		t.Fatal("unsealed with a wrong master key")
	}
}

func TestInvalidKeyIDs(t *testing.T) {
	k := newKeyring(t, t.TempDir())
	for _, id := range []string{"", "../escape", "a/b", ".hidden", "with space", string(make([]byte, 129))} {
		if _, err := k.Seal(id, wrapperspb.String("x")); !errors.Is(err, keyring.ErrInvalidKeyID) {
			t.Errorf("Seal(%q): %v, want ErrInvalidKeyID", id, err)
		}
	}
}

func TestUnsealUnknownKey(t *testing.T) {
	k := newKeyring(t, t.TempDir())
	var got wrapperspb.StringValue
	err := k.Unseal(&eventv1.Sealed{KeyId: "never"}, &got)
	if !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("unseal with unknown key: %v, want ErrNoKey", err)
	}
}

func TestMasterKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := keyring.LoadMasterKey(filepath.Join(dir, "missing"), false); err == nil {
		t.Error("missing master key without create: no error")
	}
	bad := filepath.Join(dir, "short")
	if err := os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keyring.LoadMasterKey(bad, false); err == nil {
		t.Error("short master key: no error")
	}
	path := filepath.Join(dir, "master.key")
	first, created, err := keyring.LoadMasterKey(path, true)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	again, created, err := keyring.LoadMasterKey(path, true)
	if err != nil || created || !bytes.Equal(first, again) {
		t.Fatalf("reload: created=%v err=%v same=%v", created, err, bytes.Equal(first, again))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode: %v %v", fi.Mode(), err)
	}
}

func filesUnder(t *testing.T, dir, suffix string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == suffix {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Two processes sharing one keys folder (two API replicas on one volume)
// are two Keyrings on one folder here.
func TestKeyringsSharingAFolderAgreeOnANewClientsKey(t *testing.T) {
	dir := t.TempDir()
	for round := range 20 {
		a, b := newKeyring(t, dir), newKeyring(t, dir)
		keyID := fmt.Sprintf("client-%d", round)
		var sealedA, sealedB *eventv1.Sealed
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { sealedA, errA = a.Seal(keyID, wrapperspb.String("from a")) })
		wg.Go(func() { sealedB, errB = b.Seal(keyID, wrapperspb.String("from b")) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("round %d: seal: %v, %v", round, errA, errB)
		}
		for name, kr := range map[string]*keyring.Keyring{"a": a, "b": b, "reopened": newKeyring(t, dir)} {
			for _, s := range []*eventv1.Sealed{sealedA, sealedB} {
				var got wrapperspb.StringValue
				if err := kr.Unseal(s, &got); err != nil {
					t.Fatalf("round %d: keyring %s cannot open what was sealed concurrently: %v", round, name, err)
				}
			}
		}
	}
}

func TestAnErasureByOneKeyringHoldsForAnotherThatCachedTheKey(t *testing.T) {
	dir := t.TempDir()
	a, b := newKeyring(t, dir), newKeyring(t, dir)
	sealed, err := a.Seal("client-x", wrapperspb.String("secret"))
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := b.Unseal(sealed, &got); err != nil { // b now caches the key
		t.Fatal(err)
	}
	if err := a.Erase("client-x"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(sealed, &got); !errors.Is(err, keyring.ErrErased) {
		t.Fatalf("unseal by the other keyring after erasure: %v, want ErrErased", err)
	}
	if _, err := b.Seal("client-x", wrapperspb.String("again")); !errors.Is(err, keyring.ErrErased) {
		t.Fatalf("seal by the other keyring after erasure: %v, want ErrErased", err)
	}
	if files := filesUnder(t, filepath.Join(dir, "keys"), ".key"); len(files) != 0 {
		t.Fatalf("key files after erasure: %v", files)
	}
}
