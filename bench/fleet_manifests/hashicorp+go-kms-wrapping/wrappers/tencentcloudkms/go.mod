module github.com/hashicorp/go-kms-wrapping/wrappers/tencentcloudkms/v2

go 1.24.0

require (
	github.com/hashicorp/go-kms-wrapping/v2 v2.0.21
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common v1.0.604
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/kms v1.0.604
)

require (
	github.com/hashicorp/go-secure-stdlib/parseutil v0.1.9 // indirect
	github.com/hashicorp/go-secure-stdlib/strutil v0.1.2 // indirect
	github.com/hashicorp/go-sockaddr v1.0.6 // indirect
	github.com/hashicorp/go-uuid v1.0.3 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	github.com/ryanuber/go-glob v1.0.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)
