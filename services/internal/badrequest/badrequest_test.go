package badrequest_test

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/koers-io/koers/services/internal/badrequest"
)

func TestErrNamesEveryField(t *testing.T) {
	var l badrequest.List
	if l.Err() != nil {
		t.Fatal("an empty list is an error")
	}
	l.Add("page_size", "at most %d", 1000)
	l.Add("case_id", "must be a UUID")
	st := status.Convert(l.Err())
	if st.Code() != codes.InvalidArgument || st.Message() != "invalid request: page_size: at most 1000; case_id: must be a UUID" {
		t.Fatalf("status %v %q", st.Code(), st.Message())
	}
	var fields []string
	for _, d := range st.Details() {
		for _, v := range d.(*errdetails.BadRequest).GetFieldViolations() {
			fields = append(fields, v.GetField()+"="+v.GetDescription())
		}
	}
	if len(fields) != 2 || fields[0] != "page_size=at most 1000" || fields[1] != "case_id=must be a UUID" {
		t.Errorf("details %v", fields)
	}
}
