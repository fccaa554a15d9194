module github.com/hashicorp/go-kms-wrapping/entropy/v2

go 1.20
