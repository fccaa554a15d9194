module github.com/prometheus/client_golang/exp

go 1.25.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/klauspost/compress v1.19.1
	github.com/prometheus/common v0.70.1
	google.golang.org/protobuf v1.36.11
)

require github.com/prometheus/client_model v0.6.2 // indirect
