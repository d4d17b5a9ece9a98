module foundation.runners/lab-runner

go 1.24.0

require (
	code.gitea.io/actions-proto-go v0.4.1
	connectrpc.com/connect v1.19.1
	google.golang.org/protobuf v1.36.9
)
