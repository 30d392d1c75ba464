# The option declarations of module.nix (or another module: `module`), read without nixpkgs: the module is called with a small
# stand-in for `lib` whose mkOption records what it was given and whose types are plain
# descriptions. Only `options` is looked at, so nothing in the module's `config` is evaluated.
# test/integration/nix-module-options.test.ts uses it to compare the module with the original Loft's
# README and with loft's config schema, and config-toml.nix with loft's config loader.
#
#   nix-instantiate --eval --strict --json -E '(import ./nix/tests/module-options.nix { }).options'
{
  module ? ../module.nix,
}:
let
  inherit (builtins)
    all
    attrNames
    attrValues
    concatMap
    concatStringsSep
    elem
    isAttrs
    isBool
    isInt
    isList
    isPath
    isString
    mapAttrs
    removeAttrs
    substring
    ;

  type = name: fields: { _type = "option-type"; inherit name; } // fields;
  types = {
    bool = type "bool" { };
    str = type "str" { };
    path = type "path" { };
    int = type "int" { };
    package = type "package" { };
    ints = {
      between = min: max: type "intBetween" { inherit min max; };
      positive = type "intBetween" {
        min = 1;
        max = null;
      };
    };
    enum = values: type "enum" { inherit values; };
    nullOr = elem: type "nullOr" { inherit elem; };
    listOf = elem: type "listOf" { inherit elem; };
    attrsOf = elem: type "attrsOf" { inherit elem; };
    # services.loft.caches: its entries' options are those of services.loft (options.nix).
    submodule = _: type "submodule" { };
  };
  option = fields: { _type = "option"; } // fields;
  lib = {
    inherit types;
    mkOption = option;
    mkEnableOption =
      name:
      option {
        type = types.bool;
        default = false;
        description = "Whether to enable ${name}.";
      };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
  };
  pkgs = {
    formats.toml = _: { type = type "toml" { }; };
    callPackage = _: _: throw "module-options.nix does not build packages";
  };

  declared =
    (import module {
      inherit lib pkgs;
      config = throw "module-options.nix reads option declarations only";
    }).options.services.loft;

  # Every declared option as { path = [ "s3" "bucket" ]; type; default? }, in attribute order.
  leaves =
    prefix: attrs:
    concatMap (
      name:
      let
        value = attrs.${name};
      in
      if isAttrs value && (value._type or null) == "option" then
        [
          (
            {
              path = prefix ++ [ name ];
              inherit (value) type;
            }
            # The package's default builds loft; it is described by defaultText instead.
            // (if value ? default && name != "package" then { inherit (value) default; } else { })
          )
        ]
      else if isAttrs value then
        leaves (prefix ++ [ name ]) value
      else
        [ ]
    ) (attrNames attrs);

  options = leaves [ ] declared;

  # The options' defaults as the nested attribute set the module sees as config.services.loft.
  defaultsOf =
    attrs:
    mapAttrs (
      name: value: if (value._type or null) == "option" then value.default or null else defaultsOf value
    ) (removeAttrs attrs [ "package" ]);

  # Whether `value` is one the declared type accepts, as the module system would check it.
  conforms =
    type: value:
    let
      n = type.name;
    in
    if n == "bool" then
      isBool value
    else if n == "str" then
      isString value
    else if n == "path" then
      isPath value || (isString value && substring 0 1 value == "/")
    else if n == "intBetween" then
      isInt value && value >= type.min && (type.max == null || value <= type.max)
    else if n == "enum" then
      elem value type.values
    else if n == "nullOr" then
      value == null || conforms type.elem value
    else if n == "listOf" then
      isList value && all (conforms type.elem) value
    else if n == "attrsOf" then
      isAttrs value && all (conforms type.elem) (attrValues value)
    else if n == "toml" then
      isAttrs value
    else
      throw "module-options.nix cannot check values of type ${n}";

  # `values` checked against the declarations: an undeclared option or a value of the wrong type
  # fails the evaluation, as it would fail a NixOS configuration.
  checked =
    prefix: declarations: values:
    mapAttrs (
      name: value:
      let
        option = concatStringsSep "." (prefix ++ [ name ]);
        declaration = declarations.${name} or (throw "services.loft.${option} is not declared");
      in
      if (declaration._type or null) != "option" then
        checked (prefix ++ [ name ]) declaration value
      else if conforms declaration.type value then
        value
      else
        throw "services.loft.${option}: ${builtins.toJSON value} is not a valid ${declaration.type.name}"
    ) values;

  recursiveUpdate =
    left: right:
    left
    // mapAttrs (
      name: value:
      if isAttrs value && isAttrs (left.${name} or null) then recursiveUpdate left.${name} value else value
    ) right;
in
{
  inherit options;
  defaults = defaultsOf declared;
  # config.services.loft with `values` set over the defaults (options without a default are null),
  # each checked against its declared type.
  withValues = values: recursiveUpdate (defaultsOf declared) (checked [ ] declared values);
}
