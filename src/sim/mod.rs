//! A loopback emulator of the Alibaba Cloud RPC API (`aliyun-janitor sim`): verifies signatures, timestamps
//! and nonces like the real service and serves products' list/release calls from an inventory JSON file.
