"""`edge-sdk sign BUNDLE --key PRIVATE_KEY` / `edge-sdk sign --generate-key NAME`: Ed25519 bundle
signatures (docs/BUNDLE.md "Signed bundles")."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("sign", help="sign a bundle (Ed25519), or make a signing key pair",
                       description="Writes signature.json into a bundle directory or archive: an Ed25519 "
                                   "signature of manifest.json, which pins every file by sha256. Runtimes whose "
                                   "host sets EDGE_SDK_TRUSTED_KEYS to the public key refuse bundles not signed "
                                   "by it. --generate-key NAME writes NAME.key (private, mode 0600) and "
                                   "NAME.pub.pem (public: give it to the hosts).")
    p.add_argument("bundle", nargs="?", help="bundle directory or archive to sign")
    p.add_argument("--key", metavar="PRIVATE_KEY", help="PEM private key (from --generate-key)")
    p.add_argument("--generate-key", metavar="NAME", help="write a new key pair NAME.key and NAME.pub.pem")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_sdk.bundle import BundleError
    from edge_sdk.bundle.signing import generate_key, sign_bundle
    from edge_sdk.cli import UserError

    try:
        if args.generate_key:
            if args.bundle or args.key:
                raise UserError("--generate-key makes a key pair only (sign with a second call)")
            kid = generate_key(args.generate_key + ".key", args.generate_key + ".pub.pem")
            print(f"key id {kid}: private {args.generate_key}.key, public {args.generate_key}.pub.pem")
            return 0
        if not args.bundle or not args.key:
            raise UserError("give BUNDLE and --key PRIVATE_KEY (or --generate-key NAME)")
        kid = sign_bundle(args.bundle, args.key)
    except (BundleError, OSError) as exc:
        raise UserError(str(exc)) from exc
    print(f"{args.bundle}: signed by key {kid}")
    return 0
