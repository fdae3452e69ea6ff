#!/bin/sh
# ops.sh DIR PROBE: file operations in DIR, printing what happened. Run by the guest over the 9p
# share and by the host (busybox sh) on a copy of the folder: the two outputs must be the same.
# Every command is busybox's, so both sides run the same programs.
for a in cat ls rm mv cp mkdir rmdir ln readlink stat truncate dd od sha256sum wc touch chmod seq cmp head; do
    eval "$a() { busybox $a \"\$@\"; }"
done
TZ=UTC
export TZ
cd "$1" || exit 1
probe=$2

echo "-- create, read"
echo hello > a.txt
cat a.txt
echo "-- write at offsets"
printf 'XY' | dd of=a.txt bs=1 seek=2 conv=notrunc 2>/dev/null
printf 'END' | dd of=a.txt bs=1 seek=20 conv=notrunc 2>/dev/null
od -An -c a.txt
stat -c '%s' a.txt
echo "-- truncate"
truncate -s 4 a.txt
od -An -c a.txt
truncate -s 100000 a.txt
stat -c '%s' a.txt
sha256sum a.txt
echo "-- mkdir, rename across directories"
mkdir -p d1/d2 d3
mv a.txt d1/d2/moved.txt
mv d1/d2 d3/d2
echo over > d3/victim
echo winner > w
mv w d3/victim
cat d3/victim
ls -1R d1 d3
echo "-- unlink, rmdir"
rm d3/d2/moved.txt
rmdir d3/d2
rmdir d1
ls d1 2>&1
echo x > d3/keep
rmdir d3 2>&1
ls -1 d3
echo "-- symlink, readlink"
echo target > t.txt
ln -s t.txt sl
ln -s ../t.txt d3/sl2
ln -s /no/such/place dangling
readlink sl
readlink d3/sl2
readlink dangling
cat sl d3/sl2
cat dangling 2>&1
stat -c '%n %F %s' sl dangling
echo "-- hard links"
echo one > h1
ln h1 d3/h2
stat -c '%h' h1
echo two >> d3/h2
cat h1
rm h1
stat -c '%h' d3/h2
echo "-- readdir"
# One listing of the 10,000 entries (each listing costs the guest 10,000 lookups over 9p).
list=$(ls -a many)
echo "$list" | wc -l
echo "$list" | sha256sum
echo "$list" | head -3
mkdir gen
i=0
while [ $i -lt 300 ]; do : > gen/n$i; i=$((i + 1)); done
ls gen | wc -l
rm gen/n1*
ls gen | wc -l
echo "-- stat fields"
: > s.txt
chmod 640 s.txt
touch -t 202001020304.05 s.txt
stat -c '%n %s %a %h %F %Y %X %u %g' s.txt
mkdir sd
chmod 750 sd
stat -c '%n %a %F' sd
echo "-- 0 bytes, 1 byte, 0.6 MB"
: > zero.bin
printf x > one.bin
stat -c '%n %s' zero.bin one.bin
od -An -c one.bin
wc -c < zero.bin
seq 1 100000 > big.txt
stat -c '%s' big.txt
sha256sum big.txt
cp big.txt big2.txt
cmp big.txt big2.txt && echo big copies equal
dd if=big.txt bs=4096 skip=37 count=2 2>/dev/null | sha256sum
echo "-- 100 MiB file"
"$probe" fill huge.bin 100
stat -c '%s' huge.bin
sha256sum huge.bin
dd if=huge.bin bs=65536 skip=1234 count=3 2>/dev/null | sha256sum
echo "-- xattrs, locks"
"$probe" probe.txt
echo "-- done"
