// Checks that the embedded, pruned and minified QR library draws exactly the
// modules the published one does (run by make-min.sh).
const full = require(process.argv[2]), pruned = require(process.argv[3]);
let n = 0;
for (const text of ["otpauth://totp/engine-auth:maria?secret=MMLE3CIWAUMQLVXZTWI3DSXTKLBKNPBM&issuer=engine-auth",
  "otpauth://totp/engine-auth:" + "x".repeat(200) + "?secret=ABC&issuer=engine-auth", "a", "otpauth://totp/engine-auth:b%C3%B6b?secret=AAAA"]) {
  const a = full(0, "M"), b = pruned(0, "M");
  a.addData(text); a.make(); b.addData(text); b.make();
  if (a.getModuleCount() !== b.getModuleCount()) throw new Error("size differs");
  for (let r = 0; r < a.getModuleCount(); r++) for (let c = 0; c < a.getModuleCount(); c++)
    if (a.isDark(r, c) !== b.isDark(r, c)) throw new Error("module differs");
  n++;
}
console.log("identical matrices for", n, "inputs");
