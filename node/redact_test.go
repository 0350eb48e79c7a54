package node

import "testing"

func TestLoggedNATSURLsHidePasswords(t *testing.T) {
	got := redactURLs("tls://koers:s3cret@nats-1:4222,tls://koers:s3cret@nats-2:4222")
	want := "tls://koers:xxxxx@nats-1:4222,tls://koers:xxxxx@nats-2:4222"
	if got != want {
		t.Fatalf("redactURLs = %q, want %q", got, want)
	}
	if got := redactURLs("nats://127.0.0.1:7422"); got != "nats://127.0.0.1:7422" {
		t.Fatalf("a URL without credentials changed: %q", got)
	}
}
