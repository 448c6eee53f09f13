"""The HTTP/WebSocket edge: the only part of the project that imports aiohttp."""
