-- 8: ES256 (ECDSA P-256) signing keys, published in the JWKS beside Ed25519 ones.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_algorithm_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_algorithm_check
    CHECK (algorithm IN ('hs256', 'ed25519', 'es256'));
