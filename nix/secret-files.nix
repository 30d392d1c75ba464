# The secret files of one cache's options, as { id, option, path }: `option` names the option (for
# assertion messages), `id` is the name of its systemd credential on NixOS (the file appears to the
# service as $CREDENTIALS_DIRECTORY/<id>). Only the secrets of the target loft.toml describes: with
# http.url set, the s3.* files are not handed to the service, and the other way round.
#
# Header files are numbered in name order ("s3-header-1", ...) rather than named after the header:
# a header name may hold characters that systemd gives a meaning to in unit files (such as "%").
# Builtins only (see config-toml.nix).
{ cfg, target }:
let
  inherit (builtins) attrNames elemAt genList;

  # A Nix path value stays where it is (toString does not copy it into the store).
  pathString = p: if builtins.isPath p then toString p else p;

  file =
    id: option: value:
    if value == null then
      [ ]
    else
      [
        {
          inherit id option;
          path = pathString value;
        }
      ];

  headerFiles =
    table: files:
    let
      names = attrNames files;
    in
    genList (
      i:
      let
        header = elemAt names i;
      in
      {
        inherit header;
        id = "${table}-header-${toString (i + 1)}";
        option = "${table}.extraHeadersFile.\"${header}\"";
        path = pathString files.${header};
      }
    ) (builtins.length names);

  s3 =
    file "s3-access-key" "s3.accessKeyFile" cfg.s3.accessKeyFile
    ++ file "s3-secret-key" "s3.secretKeyFile" cfg.s3.secretKeyFile
    ++ file "s3-session-token" "s3.sessionTokenFile" cfg.s3.sessionTokenFile;

  http =
    file "http-password" "http.passwordFile" cfg.http.passwordFile
    ++ file "http-token" "http.tokenFile" cfg.http.tokenFile
    ++ file "http-netrc" "http.netrcFile" cfg.http.netrcFile
    ++ file "http-client-key" "http.clientKeyFile" cfg.http.clientKeyFile;
in
{
  inherit pathString;
  s3Headers = headerFiles "s3" cfg.s3.extraHeadersFile;
  httpHeaders = headerFiles "http" cfg.http.extraHeadersFile;
  # Every secret file the service reads, headers included.
  all =
    (if target == "http" then http ++ headerFiles "http" cfg.http.extraHeadersFile else s3 ++ headerFiles "s3" cfg.s3.extraHeadersFile)
    ++ file "signing-key" "signingKeyPath" cfg.signingKeyPath;
}
