"""The NATS wire protocol, sans-IO: parser (bytes in, ops out), encoders, error texts."""
