//go:build tools

// Package tools pins the redis_exporter main package for `go build`.
package tools

import _ "github.com/oliver006/redis_exporter"
