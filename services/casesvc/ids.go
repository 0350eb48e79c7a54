package casesvc

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxRequestIDLength is the longest request ID a command may carry.
const MaxRequestIDLength = 64

// Namespaces of the name-based (version 5) UUIDs Koers derives. They are
// fixed forever: changing one would make every retry after an upgrade look
// like a new command.
var (
	eventNamespace  = uuid.MustParse("7d1c5a0e-3f7e-4f51-9a43-2c5b8f0d6e21")
	caseNamespace   = uuid.MustParse("0b9e6f43-8a2d-4c7b-b1f5-5e3a9d7c2f10")
	clientNamespace = uuid.MustParse("c4f2a8d1-6b3e-4e9a-8d70-1f5b2c9e3a64")
)

// streamOf names the event store stream of a case.
func streamOf(caseID string) string { return "case-" + caseID }

// parseCaseID reads a case ID: a UUID in its 36-character form, any case,
// not the nil UUID. It returns the canonical lower-case form, so that one
// case never has two streams.
func parseCaseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return "", false
	}
	return id.String(), true
}

// validRequestID reports whether id has the documented form: 1 to
// MaxRequestIDLength characters from A-Z, a-z, 0-9 and . _ : -.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// derivedCaseID is the case ID of an OpenCase request without one: the same
// tenant and request ID always give the same case, so a retry finds it.
func derivedCaseID(tenant, requestID string) string {
	return uuid.NewSHA1(caseNamespace, joined(tenant, requestID)).String()
}

// clientKeyID is the data key ID of a client: one key per client and
// tenant, so that every case of the client is erased together. It is a UUID
// rather than the client ID itself because client IDs may hold characters
// a key file name cannot.
func clientKeyID(tenant, clientID string) string {
	return uuid.NewSHA1(clientNamespace, joined(tenant, clientID)).String()
}

// eventID is the ID of the index-th event a command produces. It depends on
// everything that makes the command what it is — tenant, case, request ID
// and the digest of its non-personal fields — so a retry produces the same
// IDs and the store recognises it, while a request ID reused for another
// command does not.
func eventID(tenant, caseID, requestID, digest string, index int) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, joined(tenant, caseID, requestID, digest, strconv.Itoa(index)))
}

func joined(parts ...string) []byte {
	// NUL cannot occur in tenants, case IDs or request IDs, so the join
	// is unambiguous.
	return []byte(strings.Join(parts, "\x00"))
}

// digestOf fingerprints a command: the RPC's name and the request's other
// fields, serialized deterministically. It leaves out the case and request
// IDs, which the event IDs hold anyway (so "ABC…" and "abc…" are one case),
// and the personal fields, because the digest outlives erasure inside the
// event IDs and a hash of a short name could be searched for.
func digestOf(method string, req proto.Message) string {
	public := proto.Clone(req)
	clearUndigested(public.ProtoReflect())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(public)
	if err != nil {
		// A request the server just unmarshalled always marshals.
		panic("casesvc: marshal request for its digest: " + err.Error())
	}
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// undigested names the request fields digestOf leaves out: the IDs, and the
// fields that carry personal plaintext, which the service seals before the
// domain sees them.
var undigested = map[protoreflect.Name]bool{
	"case_id":     true,
	"request_id":  true,
	"client":      true,
	"answers":     true,
	"explanation": true,
	"details":     true,
	"notes":       true,
	"goals":       true,
	"summary":     true,
}

func clearUndigested(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); undigested[fd.Name()] {
			m.Clear(fd)
		}
	}
	m.SetUnknown(nil)
}
