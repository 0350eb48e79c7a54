package feedsvc

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedv1 "github.com/koers-io/koers/proto/koers/feed/v1"
	"github.com/koers-io/koers/services/authn"
)

// FuzzParseRequest checks that any request either fails with
// INVALID_ARGUMENT or gives a feed inside the principal's own subjects,
// starting where the token says.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []struct{ token, caseID string }{
		{"", ""},
		{"1", ""},
		{"18446744073709551615", ""},
		{"18446744073709551616", ""},
		{"007", ""},
		{"", "3F2504E0-4F89-11D3-9A0C-0305E82C3301"},
		{"42", "00000000-0000-0000-0000-000000000000"},
		{"-1", "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"1e3", "3f2504e0.4f89.11d3.9a0c.0305e82c3301"},
		{"\u0661", "3f2504e0-4f89-11d3-9a0c-0305e82c330*"},
	} {
		f.Add(seed.token, seed.caseID)
	}
	p := authn.Principal{Subject: "agency-a", Tenant: "acme", Roles: []authn.Role{authn.RoleAgency}, AgencyID: "reintegra"}
	f.Fuzz(func(t *testing.T, tok, caseID string) {
		fd, err := parseRequest(p, &feedv1.SubscribeRequest{ResumeToken: tok, CaseId: caseID})
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("error %v, want InvalidArgument", err)
			}
			return
		}
		if fd.tenant != p.Tenant || fd.agency != p.AgencyID {
			t.Fatalf("feed of %s/%s for principal of %s/%s", fd.tenant, fd.agency, p.Tenant, p.AgencyID)
		}
		if (tok == "") != (fd.after == 0) || tok != "" && token(fd.after) != tok {
			t.Fatalf("token %q read as %d", tok, fd.after)
		}
		if caseID != "" {
			id, err := uuid.Parse(fd.caseID)
			if err != nil || fd.caseID != id.String() || !strings.EqualFold(fd.caseID, caseID) {
				t.Fatalf("case %q read as %q", caseID, fd.caseID)
			}
		}
		if filter := fd.filter(); !strings.HasPrefix(filter, fd.prefix()) || strings.Count(filter, ".") != 4 {
			t.Fatalf("filter %q outside the agency's subjects %q*", filter, fd.prefix())
		}
	})
}
