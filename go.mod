module github.com/koers-io/koers

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e
)
