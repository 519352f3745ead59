//! Unit tests of the console: escaping, cookies and forms, CSRF, sessions, passwords and
//! roles, the preview sanitiser, and pages rendered from hostile data.
