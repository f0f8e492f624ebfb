"""The web console (`/console`): server-rendered pages over the API's own answers."""
