package node

import (
	"net/url"
	"strings"
)

// redactURLs hides the passwords in a comma-separated list of URLs, so that
// a NATS URL with credentials can go into a log.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
