/* SPDX-License-Identifier: MIT */
/*
 * test-asl-data.c — table tests of asl-data.h: one row per case, what is
 * evaluated, the input, and the JSON expected or the error expected.
 * JSON in the tables is written with ' for " (for readability); an
 * expected value starting with '!' is an error name, or for the *_check
 * rows "!" alone means "refused".
 */
#include "test-helpers.h"

#include <inttypes.h>
#include <jansson.h>

#include "asl-data.h"

typedef enum Kind {
        SELECT, /* expr: a path; want: the selection */
        RESULT, /* expr: a ResultPath ("null" for JSON null); extra: the result; want: the new document */
        TEMPLATE, /* expr: a template (JSON); want: the payload */
        INTRINSIC, /* expr: a call; want: its value */
        CHOICE, /* expr: a rule (JSON); want: "true" / "false" / an error */
        CHECK_PATH, /* expr: a path; extra: "ref" for a reference path, "ctx" to allow $$; want: "" or "!" */
        CHECK_TEMPLATE, /* expr: a template (JSON) */
        CHECK_INTRINSIC, /* expr: a call */
        CHECK_CHOICE, /* expr: a rule (JSON); extra: "top" for a top-level rule */
} Kind;

typedef struct Row {
        Kind kind;
        const char *expr;
        const char *input;
        const char *extra;
        const char *want;
} Row;

#define STORE                                                                                                          \
        "{'store':{'book':[{'category':'ref','author':'Rees','title':'Sayings','price':8.95},"                         \
        "{'category':'fiction','author':'Waugh','title':'Sword','price':12.99},"                                       \
        "{'category':'fiction','author':'Melville','title':'Moby','isbn':'0-553','price':8.99},"                       \
        "{'category':'fiction','author':'Tolkien','title':'LOTR','isbn':'0-395','price':22.99}],"                      \
        "'bicycle':{'color':'red','price':19.95}},'expensive':10}"

#define CONTEXT                                                                                                        \
        "{'Execution':{'Id':'arn:aws:states:local:execution:order:A1','Name':'A1','Input':{'x':1}},"                   \
        "'State':{'Name':'Quote','EnteredTime':'2026-12-04T16:20:00Z'},'Map':{'Item':{'Index':2,'Value':'v'}}}"

#define ORDER                                                                                                          \
        "{'order':{'id':'A1','items':[{'sku':'calabresa','qty':2,'price':45.5},{'sku':'coca','qty':1,'price':8}],"     \
        "'total':99,'paid':false,'note':null,'when':'2026-12-04T16:20:00Z','status':'CONFIRMED'},"                     \
        "'tags':['a','b','a','c'],'n':5,'s':'5','f':1.5,'t':true,'empty':[],'obj':{}}"

static const Row rows[] = {
        /* ---- paths: definite -------------------------------------------------- */
        { SELECT, "$", "{'a':1}", NULL, "{'a':1}" },
        { SELECT, "$.a", "{'a':1}", NULL, "1" },
        { SELECT, "$.a.b", "{'a':{'b':'x'}}", NULL, "'x'" },
        { SELECT, "$['a']", "{'a':1}", NULL, "1" },
        { SELECT, "$[\"a\"]", "{'a':1}", NULL, "1" },
        { SELECT, "$['a b']", "{'a b':2}", NULL, "2" },
        { SELECT, "$['it\\'s']", "{'it\\u0027s':3}", NULL, "3" },
        { SELECT, "$.a[0]", "{'a':[7,8]}", NULL, "7" },
        { SELECT, "$.a[1]", "{'a':[7,8]}", NULL, "8" },
        { SELECT, "$.a[-1]", "{'a':[7,8,9]}", NULL, "9" },
        { SELECT, "$.a[0].b", "{'a':[{'b':true}]}", NULL, "true" },
        { SELECT, "$.a['b'][0]['c']", "{'a':{'b':[{'c':null}]}}", NULL, "null" },
        { SELECT, "$.a", "{'a':null}", NULL, "null" },
        { SELECT, "$.order.items[1].sku", ORDER, NULL, "'coca'" },
        { SELECT, "$.café", "{'café':1}", NULL, "1" },
        { SELECT, "$.missing", "{'a':1}", NULL, "!States.Runtime" },
        { SELECT, "$.a.b", "{'a':5}", NULL, "!States.Runtime" },
        { SELECT, "$.a[5]", "{'a':[1]}", NULL, "!States.Runtime" },
        { SELECT, "$.a[-3]", "{'a':[1,2]}", NULL, "!States.Runtime" },
        { SELECT, "$[0]", "[4,5]", NULL, "4" },
        { SELECT, "$.a", "[4,5]", NULL, "!States.Runtime" },
        { SELECT, "$.", "{}", NULL, "!States.Runtime" },
        { SELECT, "a.b", "{}", NULL, "!States.Runtime" },
        /* ---- paths: indefinite ------------------------------------------------ */
        { SELECT, "$.a[*]", "{'a':[1,2,3]}", NULL, "[1,2,3]" },
        { SELECT, "$.a.*", "{'a':{'x':1,'y':2}}", NULL, "[1,2]" },
        { SELECT, "$.a[*].b", "{'a':[{'b':1},{'c':2},{'b':3}]}", NULL, "[1,3]" },
        { SELECT, "$.missing[*]", "{'a':1}", NULL, "[]" },
        { SELECT, "$.store.book[*].author", STORE, NULL, "['Rees','Waugh','Melville','Tolkien']" },
        { SELECT, "$..author", STORE, NULL, "['Rees','Waugh','Melville','Tolkien']" },
        { SELECT, "$.store..price", STORE, NULL, "[8.95,12.99,8.99,22.99,19.95]" },
        { SELECT, "$..book[2].title", STORE, NULL, "['Moby']" },
        { SELECT, "$..book[-1:].title", STORE, NULL, "['LOTR']" },
        { SELECT, "$..book[0,1].title", STORE, NULL, "['Sayings','Sword']" },
        { SELECT, "$..book[:2].title", STORE, NULL, "['Sayings','Sword']" },
        { SELECT, "$..book[1:3].title", STORE, NULL, "['Sword','Moby']" },
        { SELECT, "$..book[-2:].author", STORE, NULL, "['Melville','Tolkien']" },
        { SELECT, "$..book[2:].author", STORE, NULL, "['Melville','Tolkien']" },
        { SELECT, "$.a[1:10]", "{'a':[1,2,3]}", NULL, "[2,3]" },
        { SELECT, "$.a[:-1]", "{'a':[1,2,3]}", NULL, "[1,2]" },
        { SELECT, "$.a[5:]", "{'a':[1,2,3]}", NULL, "[]" },
        { SELECT, "$.a[0,2,9]", "{'a':['x','y','z']}", NULL, "['x','z']" },
        { SELECT, "$['a','c']", "{'a':1,'b':2,'c':3}", NULL, "[1,3]" },
        { SELECT, "$..book[?(@.isbn)].title", STORE, NULL, "['Moby','LOTR']" },
        { SELECT, "$..book[?(@.price < 10)].title", STORE, NULL, "['Sayings','Moby']" },
        { SELECT, "$..book[?(@.price <= 8.99)].title", STORE, NULL, "['Sayings','Moby']" },
        { SELECT, "$..book[?(@.price > 20)].title", STORE, NULL, "['LOTR']" },
        { SELECT, "$..book[?(@.price >= 12.99)].title", STORE, NULL, "['Sword','LOTR']" },
        { SELECT, "$..book[?(@.author == 'Waugh')].price", STORE, NULL, "[12.99]" },
        { SELECT, "$..book[?(@.author == \"Waugh\")].price", STORE, NULL, "[12.99]" },
        { SELECT, "$..book[?(@.category != 'fiction')].title", STORE, NULL, "['Sayings']" },
        { SELECT, "$..book[?(@.price < 10 && @.category == 'fiction')].title", STORE, NULL, "['Moby']" },
        { SELECT, "$..book[?(@.price < 9 || @.price > 20)].title", STORE, NULL, "['Sayings','Moby','LOTR']" },
        { SELECT, "$..book[?((@.price < 9 || @.price > 20) && @.isbn)].title", STORE, NULL, "['Moby','LOTR']" },
        { SELECT, "$..book[?(!(@.isbn))].title", STORE, NULL, "['Sayings','Sword']" },
        { SELECT, "$..book[?(@.price < $.expensive)].title", STORE, NULL, "['Sayings','Moby']" },
        { SELECT, "$.a[?(@.ok == true)].id", "{'a':[{'id':1,'ok':true},{'id':2,'ok':false}]}", NULL, "[1]" },
        { SELECT, "$.a[?(@.v == null)].id", "{'a':[{'id':1,'v':null},{'id':2,'v':0}]}", NULL, "[1]" },
        { SELECT, "$.a[?(@.v != 1)].id", "{'a':[{'id':1,'v':1},{'id':2,'v':2},{'id':3}]}", NULL, "[2,3]" },
        { SELECT, "$.a[?(@ > 2)]", "{'a':[1,2,3,4]}", NULL, "[3,4]" },
        { SELECT, "$.a[?(@ == 'x')]", "{'a':['x','y','x']}", NULL, "['x','x']" },
        { SELECT, "$.a[?(@.n == 2)]", "{'a':[{'n':2.0},{'n':'2'}]}", NULL, "[{'n':2.0}]" },
        { SELECT, "$.a[?(@.s < 'b')]", "{'a':[{'s':'a'},{'s':'c'}]}", NULL, "[{'s':'a'}]" },
        { SELECT, "$.a[?(@.n < 'b')]", "{'a':[{'n':1}]}", NULL, "[]" },
        { SELECT, "$.a[?(@.tags[0] == 'hot')].id", "{'a':[{'id':1,'tags':['hot']},{'id':2,'tags':[]}]}", NULL, "[1]" },
        { SELECT, "$.order.items[?(@.qty > 1)].sku", ORDER, NULL, "['calabresa']" },
        { SELECT, "$..[0]", "{'a':[1,[2,3]]}", NULL, "[1,2]" },
        { SELECT, "$..*", "{'a':{'b':1}}", NULL, "[{'b':1},1]" },
        { SELECT, "$..['b']", "{'a':{'b':1},'b':2}", NULL, "[2,1]" },
        { SELECT, "$.a[?(@.x)]", "{'a':{'x':1}}", NULL, "[{'x':1}]" },
        { SELECT, "$.a[?(@.x ~= 1)]", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$.a[?(@.x =~ /a/)]", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$.a[1:2:1]", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$.a.length()", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$.a[", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$['a]", "{'a':[]}", NULL, "!States.Runtime" },
        { SELECT, "$.a[0,'b']", "{'a':[]}", NULL, "!States.Runtime" },
        /* ---- context paths ---------------------------------------------------- */
        { SELECT, "$$.Execution.Id", "{}", NULL, "'arn:aws:states:local:execution:order:A1'" },
        { SELECT, "$$.State.Name", "{}", NULL, "'Quote'" },
        { SELECT, "$$.Map.Item.Index", "{}", NULL, "2" },
        { SELECT, "$$.Execution.Input.x", "{}", NULL, "1" },
        { SELECT, "$$", "{}", NULL, CONTEXT },
        { SELECT, "$$.Task.Token", "{}", NULL, "!States.Runtime" },
        /* ---- ResultPath ------------------------------------------------------- */
        { RESULT, "$", "{'a':1}", "{'r':2}", "{'r':2}" },
        { RESULT, "null", "{'a':1}", "{'r':2}", "{'a':1}" },
        { RESULT, "$.r", "{'a':1}", "7", "{'a':1,'r':7}" },
        { RESULT, "$.a", "{'a':1}", "7", "{'a':7}" },
        { RESULT, "$.x.y.z", "{'a':1}", "'v'", "{'a':1,'x':{'y':{'z':'v'}}}" },
        { RESULT, "$.x.y", "{'x':{'k':1}}", "[1]", "{'x':{'k':1,'y':[1]}}" },
        { RESULT, "$['a b']", "{}", "true", "{'a b':true}" },
        { RESULT, "$.l[1]", "{'l':[1,2,3]}", "'two'", "{'l':[1,'two',3]}" },
        { RESULT, "$.l[0].v", "{'l':[{'v':1}]}", "2", "{'l':[{'v':2}]}" },
        { RESULT, "$.l[3]", "{'l':[1]}", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$.a.b", "{'a':5}", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$.a", "[1,2]", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$.a[*]", "{'a':[1]}", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$..a", "{'a':[1]}", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$$.a", "{}", "2", "!States.ResultPathMatchFailure" },
        { RESULT, "$", "'plain'", "null", "null" },
        /* ---- templates -------------------------------------------------------- */
        { TEMPLATE, "{'a':1,'b':'$.x'}", "{'x':2}", NULL, "{'a':1,'b':'$.x'}" },
        { TEMPLATE, "{'b.$':'$.x'}", "{'x':2}", NULL, "{'b':2}" },
        { TEMPLATE, "{'b.$':'$'}", "{'x':2}", NULL, "{'b':{'x':2}}" },
        { TEMPLATE, "{'o':{'p.$':'$.x','q':[1,{'r.$':'$.y'}]}}", "{'x':2,'y':'s'}", NULL,
          "{'o':{'p':2,'q':[1,{'r':'s'}]}}" },
        { TEMPLATE, "{'id.$':'$$.Execution.Name'}", "{}", NULL, "{'id':'A1'}" },
        { TEMPLATE, "{'m.$':'States.Format(\\u0027Hi {}\\u0027, $.name)'}", "{'name':'Ana'}", NULL, "{'m':'Hi Ana'}" },
        { TEMPLATE, "{'skus.$':'$.order.items[*].sku'}", ORDER, NULL, "{'skus':['calabresa','coca']}" },
        { TEMPLATE, "[{'a.$':'$.n'},2]", ORDER, NULL, "[{'a':5},2]" },
        { TEMPLATE, "'text'", "{}", NULL, "'text'" },
        { TEMPLATE, "{'b.$':'$.missing'}", "{}", NULL, "!States.Runtime" },
        { TEMPLATE, "{'b.$':'States.ArrayLength($.n)'}", ORDER, NULL, "!States.IntrinsicFailure" },
        /* ---- intrinsics ------------------------------------------------------- */
        { INTRINSIC, "States.Format('Hello, {}!', $.name)", "{'name':'Ana'}", NULL, "'Hello, Ana!'" },
        { INTRINSIC, "States.Format('{} x {} = {}', 2, 1.5, 3.0)", "{}", NULL, "'2 x 1.5 = 3.0'" },
        { INTRINSIC, "States.Format('{}{}{}', true, null, 'z')", "{}", NULL, "'truenullz'" },
        { INTRINSIC, "States.Format('\\{\\} {} \\\\ it\\'s', 1)", "{}", NULL, "'{} 1 \\\\ it\\u0027s'" },
        { INTRINSIC, "States.Format($.t, $.v)", "{'t':'v={}','v':0.1}", NULL, "'v=0.1'" },
        { INTRINSIC, "States.Format('no placeholders')", "{}", NULL, "'no placeholders'" },
        { INTRINSIC, "States.Format($.t, 1)", "{'t':'{} {}'}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.Format('{}', $.o)", "{'o':{'Arg1':1,'Arg2':[],'s':'x'}}", NULL,
          "'{Arg1=1, Arg2=[], s=x}'" },
        { INTRINSIC, "States.Format('{} {}', $.a, $.e)", "{'a':['x',2.5,null,{'k':true}],'e':{}}", NULL,
          "'[x, 2.5, null, {k=true}] {}'" },
        { INTRINSIC, "States.Format($.n)", "{'n':1}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.StringToJson($.s)", "{'s':'{\\'a\\':[1,true]}'}", NULL, "{'a':[1,true]}" },
        { INTRINSIC, "States.StringToJson('42')", "{}", NULL, "42" },
        { INTRINSIC, "States.StringToJson('{bad')", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.JsonToString($.o)", "{'o':{'a':1,'b':[1,'x']}}", NULL,
          "'{\\'a\\':1,\\'b\\':[1,\\'x\\']}'" },
        { INTRINSIC, "States.JsonToString($.s)", "{'s':'x'}", NULL, "'\\'x\\''" },
        { INTRINSIC, "States.JsonToString($.a)", "{'a':[0.1,3.0,12.99,-2,1e300]}", NULL, "'[0.1,3.0,12.99,-2,1e300]'" },
        { INTRINSIC, "States.Array(1, 'a', $.o, States.Array())", "{'o':{'k':null}}", NULL, "[1,'a',{'k':null},[]]" },
        { INTRINSIC, "States.Array()", "{}", NULL, "[]" },
        { INTRINSIC, "States.ArrayPartition($.a, 2)", "{'a':[1,2,3,4,5]}", NULL, "[[1,2],[3,4],[5]]" },
        { INTRINSIC, "States.ArrayPartition($.a, 4)", "{'a':[1,2]}", NULL, "[[1,2]]" },
        { INTRINSIC, "States.ArrayPartition($.empty, 4)", ORDER, NULL, "[]" },
        { INTRINSIC, "States.ArrayPartition($.tags, 0)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayContains($.tags, 'b')", ORDER, NULL, "true" },
        { INTRINSIC, "States.ArrayContains($.tags, 'z')", ORDER, NULL, "false" },
        { INTRINSIC, "States.ArrayContains($.a, $.v)", "{'a':[{'k':1}],'v':{'k':1}}", NULL, "true" },
        { INTRINSIC, "States.ArrayContains($.s, 'b')", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayRange(1, 9, 2)", "{}", NULL, "[1,3,5,7,9]" },
        { INTRINSIC, "States.ArrayRange(0, 3, 1)", "{}", NULL, "[0,1,2,3]" },
        { INTRINSIC, "States.ArrayRange(5, 1, -2)", "{}", NULL, "[5,3,1]" },
        { INTRINSIC, "States.ArrayRange(5, 1, 1)", "{}", NULL, "[]" },
        { INTRINSIC, "States.ArrayRange(1, 2, 0)", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayRange(0, 1000, 1)", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayGetItem($.tags, 3)", ORDER, NULL, "'c'" },
        { INTRINSIC, "States.ArrayGetItem($.tags, $.n)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayGetItem($.tags, 1.5)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayGetItem($.tags, 2.0)", ORDER, NULL, "'a'" },
        { INTRINSIC, "States.ArrayGetItem($.tags, -1)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayLength($.tags)", ORDER, NULL, "4" },
        { INTRINSIC, "States.ArrayLength($.empty)", ORDER, NULL, "0" },
        { INTRINSIC, "States.ArrayLength($.obj)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayUnique($.tags)", ORDER, NULL, "['a','b','c']" },
        { INTRINSIC, "States.ArrayUnique($.a)", "{'a':[1,1.0,{'x':1},{'x':1},null,null]}", NULL,
          "[1,1.0,{'x':1},null]" },
        { INTRINSIC, "States.Base64Encode('Data to encode')", "{}", NULL, "'RGF0YSB0byBlbmNvZGU='" },
        { INTRINSIC, "States.Base64Encode('')", "{}", NULL, "''" },
        { INTRINSIC, "States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "{}", NULL, "'Data to encode'" },
        { INTRINSIC, "States.Base64Decode('Y2Fmw6k=')", "{}", NULL, "'café'" },
        { INTRINSIC, "States.Base64Decode('#not base64#')", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.Base64Decode('/w==')", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.Hash('abc', 'MD5')", "{}", NULL, "'900150983cd24fb0d6963f7d28e17f72'" },
        { INTRINSIC, "States.Hash('abc', 'SHA-1')", "{}", NULL, "'a9993e364706816aba3e25717850c26c9cd0d89d'" },
        { INTRINSIC, "States.Hash('abc', 'SHA-256')", "{}", NULL,
          "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'" },
        { INTRINSIC, "States.Hash('abc', 'SHA-384')", "{}", NULL,
          "'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7'" },
        { INTRINSIC, "States.Hash($.d, $.alg)", "{'d':'abc','alg':'SHA-512'}", NULL,
          "'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643"
          "ce80e2a9ac94fa54ca49f'" },
        { INTRINSIC, "States.Hash($.d, $.alg)", "{'d':'abc','alg':'SHA-224'}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.JsonMerge($.a, $.b, false)", "{'a':{'x':1,'y':{'p':1}},'b':{'y':{'q':2},'z':3}}", NULL,
          "{'x':1,'y':{'q':2},'z':3}" },
        { INTRINSIC, "States.JsonMerge($.a, $.b, $.deep)", "{'a':{},'b':{},'deep':true}", NULL,
          "!States.IntrinsicFailure" },
        { INTRINSIC, "States.JsonMerge($.a, $.b, false)", "{'a':[],'b':{}}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.MathAdd(111, -1)", "{}", NULL, "110" },
        { INTRINSIC, "States.MathAdd($.n, $.order.total)", ORDER, NULL, "104" },
        { INTRINSIC, "States.MathAdd($.n, $.f)", ORDER, NULL, "7" },
        { INTRINSIC, "States.MathAdd(-1.5, 0.4)", "{}", NULL, "-1" },
        { INTRINSIC, "States.ArrayPartition($.a, 1.6)", "{'a':[1,2,3]}", NULL, "[[1,2],[3]]" },
        { INTRINSIC, "States.ArrayRange(0.6, 2.4, 1)", "{}", NULL, "[1,2]" },
        { INTRINSIC, "States.MathAdd(2147483648, 1)", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.MathAdd($.s, 1)", ORDER, NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.MathRandom(7, 8)", "{}", NULL, "7" },
        { INTRINSIC, "States.MathRandom(7, 8, 1234)", "{}", NULL, "7" },
        { INTRINSIC, "States.MathRandom(8, 8)", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.StringSplit('1,2,3', ',')", "{}", NULL, "['1','2','3']" },
        { INTRINSIC, "States.StringSplit('This.is+a,test=string', '.+,=')", "{}", NULL,
          "['This','is','a','test','string']" },
        { INTRINSIC, "States.StringSplit(',a,,b,', ',')", "{}", NULL, "['a','b']" },
        { INTRINSIC, "States.StringSplit($.s, ',')", "{'s':''}", NULL, "[]" },
        { INTRINSIC, "States.StringSplit('a', '')", "{}", NULL, "!States.IntrinsicFailure" },
        { INTRINSIC, "States.ArrayGetItem(States.StringSplit($.arn, ':'), 3)", "{'arn':'arn:aws:states:sa-east-1'}",
          NULL, "'sa-east-1'" },
        { INTRINSIC, "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit($.v, '.'), 0), $$.State.Name)",
          "{'v':'1.2'}", NULL, "'1.Quote'" },
        { INTRINSIC, "States.Format( '{}' , $.n )", "{'n':1}", NULL, "'1'" },
        { INTRINSIC, "States.ArrayLength($.order.items[?(@.qty > 0)])", ORDER, NULL, "2" },
        { INTRINSIC, "States.Format('{}', $.missing)", "{}", NULL, "!States.Runtime" },
        { INTRINSIC, "States.Nope(1)", "{}", NULL, "!States.IntrinsicFailure" },
        /* ---- Choice rules ----------------------------------------------------- */
        { CHOICE, "{'Variable':'$.order.status','StringEquals':'CONFIRMED'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.status','StringEquals':'PREPARING'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.status','StringLessThan':'D'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.status','StringGreaterThan':'D'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.status','StringLessThanEquals':'CONFIRMED'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.status','StringGreaterThanEquals':'CONFIRMEE'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.id','StringEqualsPath':'$$.Execution.Name'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.a','StringLessThanPath':'$.b'}", "{'a':'x','b':'y'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.a','StringGreaterThanPath':'$.b'}", "{'a':'x','b':'y'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.a','StringLessThanEqualsPath':'$.b'}", "{'a':'y','b':'y'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.a','StringGreaterThanEqualsPath':'$.b'}", "{'a':'x','b':'y'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.n','StringEquals':'5'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.n','NumericEquals':5}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.n','NumericEquals':5.0}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.s','NumericEquals':5}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.f','NumericLessThan':2}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.f','NumericGreaterThan':1.5}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.f','NumericLessThanEquals':1.5}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.f','NumericGreaterThanEquals':1.6}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.n','NumericEqualsPath':'$.order.items[0].qty'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.total','NumericGreaterThanPath':'$.n'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.total','NumericLessThanPath':'$.n'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.n','NumericLessThanEqualsPath':'$.n'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.n','NumericGreaterThanEqualsPath':'$.f'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.n','NumericEqualsPath':'$.s'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.t','BooleanEquals':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.paid','BooleanEquals':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.s','BooleanEquals':false}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.t','BooleanEqualsPath':'$.order.paid'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.when','TimestampEquals':'2026-12-04T13:20:00-03:00'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.when','TimestampLessThan':'2026-12-04T16:20:00.001Z'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.when','TimestampGreaterThan':'2026-12-04T16:20:00Z'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.when','TimestampLessThanEquals':'2026-12-04T16:20:00Z'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.when','TimestampGreaterThanEquals':'2026-12-04T17:00:00+01:00'}", ORDER, NULL,
          "true" },
        { CHOICE, "{'Variable':'$.order.when','TimestampEqualsPath':'$$.State.EnteredTime'}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.a','TimestampLessThanPath':'$.b'}",
          "{'a':'2026-01-01T00:00:00Z','b':'2026-01-01T00:00:00.5Z'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.a','TimestampGreaterThanPath':'$.b'}",
          "{'a':'2026-01-01T00:00:00Z','b':'2025-12-31T23:59:59Z'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.a','TimestampLessThanEqualsPath':'$.b'}",
          "{'a':'2026-01-01T00:00:00Z','b':'2025-12-31T23:59:59Z'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.a','TimestampGreaterThanEqualsPath':'$.b'}",
          "{'a':'2026-01-01T00:00:00Z','b':'not a time'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.s','TimestampEquals':'2026-12-04T16:20:00Z'}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.note','IsNull':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.id','IsNull':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.id','IsNull':false}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.note','IsPresent':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.nope','IsPresent':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.nope','IsPresent':false}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$$.Task.Token','IsPresent':false}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.n','IsNumeric':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.s','IsNumeric':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.s','IsString':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.n','IsString':false}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.t','IsBoolean':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.note','IsBoolean':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.order.when','IsTimestamp':true}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.order.id','IsTimestamp':true}", ORDER, NULL, "false" },
        { CHOICE, "{'Variable':'$.f','IsTimestamp':false}", ORDER, NULL, "true" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'log-*.txt'}", "{'file':'log-2026-12.txt'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'log-*.txt'}", "{'file':'log-2026.csv'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'*'}", "{'file':''}", NULL, "true" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'a*b*c'}", "{'file':'aXbYbc'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'a\\\\*'}", "{'file':'a*'}", NULL, "true" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'a\\\\*'}", "{'file':'ab'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.file','StringMatches':'exact'}", "{'file':'exactly'}", NULL, "false" },
        { CHOICE, "{'Variable':'$.n','StringMatches':'*'}", ORDER, NULL, "false" },
        { CHOICE, "{'And':[{'Variable':'$.n','NumericGreaterThan':1},{'Variable':'$.t','BooleanEquals':true}]}", ORDER,
          NULL, "true" },
        { CHOICE, "{'And':[{'Variable':'$.n','NumericGreaterThan':1},{'Variable':'$.t','BooleanEquals':false}]}", ORDER,
          NULL, "false" },
        { CHOICE, "{'Or':[{'Variable':'$.n','NumericLessThan':1},{'Variable':'$.t','BooleanEquals':true}]}", ORDER,
          NULL, "true" },
        { CHOICE, "{'Or':[{'Variable':'$.n','NumericLessThan':1},{'Variable':'$.s','IsNull':true}]}", ORDER, NULL,
          "false" },
        { CHOICE, "{'Not':{'Variable':'$.order.status','StringEquals':'CANCELLED'}}", ORDER, NULL, "true" },
        { CHOICE,
          "{'And':[{'Not':{'Variable':'$.x','IsPresent':true}},{'Or':[{'Variable':'$.n','NumericEquals':5},"
          "{'Variable':'$.missing','IsNull':true}]}]}",
          ORDER, NULL, "true" },
        { CHOICE, "{'Or':[{'Variable':'$.t','BooleanEquals':true},{'Variable':'$.missing','IsNull':true}]}", ORDER,
          NULL, "true" },
        { CHOICE, "{'Variable':'$.missing','StringEquals':'x'}", ORDER, NULL, "!States.Runtime" },
        { CHOICE, "{'Variable':'$.missing','IsNull':true}", ORDER, NULL, "!States.Runtime" },
        { CHOICE, "{'Variable':'$.n','NumericEqualsPath':'$.missing'}", ORDER, NULL, "!States.Runtime" },
        { CHOICE, "{'Variable':'$.order.items[*].qty','IsPresent':true}", ORDER, NULL, "true" },
        /* ---- checks: paths ---------------------------------------------------- */
        { CHECK_PATH, "$", NULL, "ref", "" },
        { CHECK_PATH, "$.a.b", NULL, "ref", "" },
        { CHECK_PATH, "$['a b'].c[3]", NULL, "ref", "" },
        { CHECK_PATH, "$.a[*]", NULL, "ref", "!" },
        { CHECK_PATH, "$..a", NULL, "ref", "!" },
        { CHECK_PATH, "$.a[?(@.x)]", NULL, "ref", "!" },
        { CHECK_PATH, "$.a[1:2]", NULL, "ref", "!" },
        { CHECK_PATH, "$['a','b']", NULL, "ref", "!" },
        { CHECK_PATH, "$.a[-1]", NULL, "ref", "!" },
        { CHECK_PATH, "$$.Execution.Id", NULL, "ref", "!" },
        { CHECK_PATH, "$$.Execution.Id", NULL, "ctx", "" },
        { CHECK_PATH, "$$.Execution.Id", NULL, "", "!" },
        { CHECK_PATH, "$..book[?(@.price < 10 && @.isbn)]", NULL, "", "" },
        { CHECK_PATH, "", NULL, "", "!" },
        { CHECK_PATH, "$.a b", NULL, "", "!" },
        { CHECK_PATH, "$.a[?(@.x", NULL, "", "!" },
        { CHECK_PATH, "$.a[?(@.x <)]", NULL, "", "!" },
        { CHECK_PATH, "$.a[?('x')]", NULL, "", "!" },
        { CHECK_PATH, "$.a[?(@.x == $$.y)]", NULL, "ctx", "!" },
        { CHECK_PATH, "$['a\\q']", NULL, "", "!" },
        { CHECK_PATH, "$..", NULL, "", "!" },
        { CHECK_PATH, "$.\xff", NULL, "", "!" },
        { CHECK_PATH, "$['\xc3']", NULL, "", "!" },
        { CHECK_PATH, "$.a[?(@.b == '\xff')]", NULL, "", "!" },
        /* ---- checks: templates ------------------------------------------------ */
        { CHECK_TEMPLATE, "{'a.$':'$.x','b':{'c.$':'States.UUID()'},'d':[{'e.$':'$$.Map.Item.Value'}]}", NULL, NULL,
          "" },
        { CHECK_TEMPLATE, "{'a.$':1}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'a':{'b.$':true}}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "[{'b.$':null}]", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'a.$':'x'}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'a.$':'$.x[?('}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'a.$':'States.Nope()'}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'a':1,'a.$':'$.x'}", NULL, NULL, "!" },
        { CHECK_TEMPLATE, "{'.$':'$.x'}", NULL, NULL, "!" },
        /* ---- checks: intrinsics ----------------------------------------------- */
        { CHECK_INTRINSIC, "States.Format('{} {}', $.a, States.UUID())", NULL, NULL, "" },
        { CHECK_INTRINSIC, "States.MathRandom(1, 10, $.seed)", NULL, NULL, "" },
        { CHECK_INTRINSIC, "States.Format('{} {}', $.a)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Format('{', $.a)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Format(1)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.ArrayLength('x')", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.ArrayLength($.a, $.b)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.UUID(1)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.MathRandom(1)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Hash($.a, 'SHA-3')", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.JsonMerge($.a, $.b, true)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.ArrayRange(1, 2, 'x')", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Array(", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Array(1 2)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Array() x", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Format('unterminated)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Format('\\n')", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Array($.a[)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Array(yes)", NULL, NULL, "!" },
        { CHECK_INTRINSIC, "States.Frobnicate()", NULL, NULL, "!" },
        { CHECK_INTRINSIC,
          "States.Array(States.Array(States.Array(States.Array(States.Array(States.Array(States.Array(States.Array("
          "States.Array(States.Array(States.Array()))))))))))",
          NULL, NULL, "!" },
        { CHECK_INTRINSIC,
          "States.Array(States.Array(States.Array(States.Array(States.Array(States.Array(States.Array(States.Array("
          "States.Array(States.Array())))))))))",
          NULL, NULL, "" },
        /* ---- checks: Choice rules --------------------------------------------- */
        { CHECK_CHOICE, "{'Variable':'$.a','StringEquals':'x','Next':'S'}", NULL, "top", "" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEquals':'x'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEquals':'x','Next':'S'}", NULL, "", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEquals':1,'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','NumericEquals':'1','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','BooleanEquals':1,'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','TimestampEquals':'yesterday','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','TimestampEquals':'2026-12-04t16:20:00z','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','IsNull':'yes','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEqualsPath':'a','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','NumericEqualsPath':'$$.Map.Item.Index','Next':'S'}", NULL, "top", "" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringMatches':5,'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEquals':'x','NumericEquals':1,'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'StringEquals':'x','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'a','StringEquals':'x','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','StringEqualz':'x','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'And':[],'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'And':{},'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Or':[{'Variable':'$.a','IsPresent':true,'Next':'S'}],'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Not':{'Variable':'$.a','IsPresent':true},'Next':'S'}", NULL, "top", "" },
        { CHECK_CHOICE, "{'Not':[],'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'And':[{'Variable':'$.a','IsString':true}],'Variable':'$.b','Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'And':[{'Variable':'$.a','IsString':true}],'Or':[],'Next':'S'}", NULL, "top", "!" },
        { CHECK_CHOICE, "{'Variable':'$.a','IsString':true,'Next':5}", NULL, "top", "!" },
        { CHECK_CHOICE, "[]", NULL, "top", "!" },
};

static json_t *load(const char *text) {
        char *s = strdup(text);
        json_error_t err;
        json_t *v;

        assert_non_null(s);
        for (char *p = s; *p; p++)
                if (*p == '\'')
                        *p = '"';
        v = json_loads(s, JSON_DECODE_ANY, &err);
        if (!v)
                fail_msg("bad JSON in the table: %s: %s", text, err.text);
        free(s);
        return v;
}

static void expect_json(const Row *row, json_t *got) {
        json_t *want = load(row->want);
        if (!json_equal(want, got)) {
                char *g = mem_json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
                fail_msg("%s: got %s, want %s", row->expr, g, row->want);
        }
        json_decref(want);
}

static void run_row(const Row *row, json_t *context) {
        AslFailure f = {};
        json_t *input = row->input ? load(row->input) : NULL, *got = NULL, *tmpl = NULL, *value = NULL;
        char *err = NULL;
        bool match = false;
        int r = 0;

        switch (row->kind) {
        case SELECT:
                r = asl_path_select(row->expr, input, context, &got, &f);
                break;
        case RESULT:
                value = load(row->extra);
                r = asl_path_apply_result(streq(row->expr, "null") ? NULL : row->expr, input, value, &got, &f);
                break;
        case TEMPLATE:
                tmpl = load(row->expr);
                assert_int_equal(asl_template_check(tmpl, NULL) == 0 || row->want[0] == '!', true);
                r = asl_template_eval(tmpl, input, context, &got, &f);
                break;
        case INTRINSIC:
                assert_true(asl_intrinsic_is_call(row->expr));
                r = asl_intrinsic_eval(row->expr, input, context, &got, &f);
                break;
        case CHOICE:
                tmpl = load(row->expr);
                if (asl_choice_check(tmpl, false, &err) < 0)
                        fail_msg("%s: refused by the check: %s", row->expr, err);
                r = asl_choice_eval(tmpl, input, context, &match, &f);
                if (r == 0)
                        got = json_boolean(match);
                break;
        case CHECK_PATH:
                r = asl_path_check(row->expr, streq(row->extra, "ref"), streq(row->extra, "ctx"), &err);
                break;
        case CHECK_TEMPLATE:
                tmpl = load(row->expr);
                r = asl_template_check(tmpl, &err);
                break;
        case CHECK_INTRINSIC:
                r = asl_intrinsic_check(row->expr, &err);
                break;
        case CHECK_CHOICE:
                tmpl = load(row->expr);
                r = asl_choice_check(tmpl, streq(row->extra, "top"), &err);
                break;
        }

        if (row->kind >= CHECK_PATH) {
                if (row->want[0] == '!') {
                        if (r != -EINVAL || isempty(err))
                                fail_msg("%s: accepted by the check (r=%d), should be refused", row->expr, r);
                } else if (r != 0)
                        fail_msg("%s: refused by the check: %s", row->expr, err);
        } else if (row->want[0] == '!') {
                if (r != -EINVAL)
                        fail_msg("%s: r=%d, want the failure %s", row->expr, r, row->want + 1);
                if (!streq_ptr(f.error, row->want + 1))
                        fail_msg("%s: failed with %s (%s), want %s", row->expr, f.error, f.cause, row->want + 1);
                assert_non_null(f.cause);
        } else {
                if (r != 0)
                        fail_msg("%s: r=%d %s: %s", row->expr, r, f.error, f.cause);
                expect_json(row, got);
        }
        asl_failure_clear(&f);
        free(err);
        json_decref(got);
        json_decref(tmpl);
        json_decref(value);
        json_decref(input);
}

static void test_table(void **state _unused_) {
        json_t *context = load(CONTEXT);

        assert_true(ELEMENTSOF(rows) >= 150);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                run_row(&rows[i], context);
        json_decref(context);
}

/* ResultPath must not change what it was given. */
static void test_result_path_copies(void **state _unused_) {
        json_t *input = load("{'a':{'b':1}}"), *value = load("{'r':[1]}"), *got = NULL;
        json_t *input_before = json_deep_copy(input), *value_before = json_deep_copy(value);

        assert_int_equal(asl_path_apply_result("$.a.c", input, value, &got, NULL), 0);
        assert_true(json_equal(input, input_before));
        assert_true(json_equal(value, value_before));
        json_array_append_new(json_object_get(json_object_get(json_object_get(got, "a"), "c"), "r"), json_integer(2));
        assert_true(json_equal(value, value_before));
        json_decref(got);
        json_decref(input);
        json_decref(value);
        json_decref(input_before);
        json_decref(value_before);
}

/* The compiled forms share what they can: a ResultPath copies only the
 * objects on its way, a template only what has "key.$" below it. */
static void test_compiled_share(void **state _unused_) {
        json_t *input = load("{'a':{'b':1},'z':[1],'s':'x'}"), *value = load("{'r':[1]}"), *got = NULL;
        json_t *before = json_deep_copy(input), *tmpl = load("{'lit':{'k':[1,2]},'sel.$':'$.z','n':{'v.$':'$.s'}}");
        AslTemplate *t = NULL;
        AslPath *p = NULL;

        assert_int_equal(asl_path_compile("$.a.c", true, false, &p, NULL), 0);
        assert_int_equal(asl_path_store(p, input, value, &got, NULL), 0);
        assert_true(json_equal(input, before));
        assert_ptr_not_equal(json_object_get(got, "a"), json_object_get(input, "a"));
        assert_ptr_equal(json_object_get(got, "z"), json_object_get(input, "z"));
        assert_ptr_equal(json_object_get(json_object_get(got, "a"), "c"), value);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(got, "a"), "b")), 1);
        json_decref(got);
        p = asl_path_free(p);

        /* A scalar in the way is a failure, and input is still untouched. */
        assert_int_equal(asl_path_compile("$.s.t", true, false, &p, NULL), 0);
        assert_int_equal(asl_path_store(p, input, value, &got, NULL), -EINVAL);
        assert_true(json_equal(input, before));
        p = asl_path_free(p);

        assert_int_equal(asl_template_compile(tmpl, &t, NULL), 0);
        assert_false(asl_template_uses_context(t));
        assert_int_equal(asl_template_apply(t, input, NULL, &got, NULL), 0);
        assert_ptr_equal(json_object_get(got, "lit"), json_object_get(tmpl, "lit"));
        assert_ptr_equal(json_object_get(got, "sel"), json_object_get(input, "z"));
        assert_string_equal(json_string_value(json_object_get(json_object_get(got, "n"), "v")), "x");
        json_decref(got);
        asl_template_free(t);

        json_decref(tmpl);
        json_decref(input);
        json_decref(before);
        json_decref(value);
}

/* What reads only under one member: the interpreter makes only that member
 * of a Lambda response then, so a wrong "yes" would change results. */
static void test_reads_only(void **state _unused_) {
        static const struct {
                const char *path;
                bool want;
        } paths[] = {
                { "$.Payload", true },
                { "$.Payload.a[0]", true },
                { "$['Payload']", true },
                { "$.Payload..v", true },
                { "$.Payload[?(@.v == 1)]", true },
                { "$$.Task.Token", true },
                { "$.Payload[?(@.v == $.StatusCode)]", false },
                { "$.Payload[?(@.a[?(@ == $.x)])]", false },
                { "$", false },
                { "$..Payload", false },
                { "$.*", false },
                { "$['Payload','StatusCode']", false },
                { "$.StatusCode", false },
        };
        static const struct {
                const char *tmpl;
                bool want;
        } templates[] = {
                { "{'a.$':'States.Format(\\u0027{}\\u0027, $.Payload.a)','b':1,'c':[{'d.$':'$.Payload'}]}", true },
                { "{'a.$':'States.Format(\\u0027{} {}\\u0027, $.Payload.a, States.Array($.StatusCode))'}", false },
                { "{'a':{'b.$':'$.SdkHttpMetadata'}}", false },
                { "{'a':'$.StatusCode'}", true },
        };

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                AslPath *p = NULL;
                assert_int_equal(asl_path_compile(paths[i].path, false, true, &p, NULL), 0);
                if (asl_path_reads_only(p, "Payload") != paths[i].want)
                        fail_msg("%s: reads only under Payload should be %d", paths[i].path, paths[i].want);
                asl_path_free(p);
        }
        for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
                json_t *j = load(templates[i].tmpl);
                AslTemplate *t = NULL;
                assert_int_equal(asl_template_compile(j, &t, NULL), 0);
                if (asl_template_reads_only(t, "Payload") != templates[i].want)
                        fail_msg("%s: reads only under Payload should be %d", templates[i].tmpl, templates[i].want);
                asl_template_free(t);
                json_decref(j);
        }
}

static void test_uuid(void **state _unused_) {
        json_t *a = NULL, *b = NULL;

        assert_int_equal(asl_intrinsic_eval("States.UUID()", NULL, NULL, &a, NULL), 0);
        assert_int_equal(asl_intrinsic_eval("States.UUID()", NULL, NULL, &b, NULL), 0);
        const char *s = json_string_value(a);
        assert_non_null(s);
        assert_int_equal(strlen(s), 36);
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23)
                        assert_int_equal(s[i], '-');
                else
                        assert_non_null(strchr("0123456789abcdef", s[i]));
        }
        assert_int_equal(s[14], '4');
        assert_non_null(strchr("89ab", s[19]));
        assert_string_not_equal(s, json_string_value(b));
        json_decref(a);
        json_decref(b);
}

static void test_math_random(void **state _unused_) {
        json_t *a = NULL, *b = NULL;
        bool seen[10] = {};

        /* A seed gives the same number every time. */
        for (int seed = 0; seed < 50; seed++) {
                char expr[64];
                snprintf(expr, sizeof expr, "States.MathRandom(-5, 5, %d)", seed);
                assert_int_equal(asl_intrinsic_eval(expr, NULL, NULL, &a, NULL), 0);
                assert_int_equal(asl_intrinsic_eval(expr, NULL, NULL, &b, NULL), 0);
                assert_true(json_equal(a, b));
                json_decref(a);
                json_decref(b);
        }
        /* Without one, every value of [start, end) comes up, and only those. */
        for (int i = 0; i < 2000; i++) {
                assert_int_equal(asl_intrinsic_eval("States.MathRandom(10, 20)", NULL, NULL, &a, NULL), 0);
                json_int_t v = json_integer_value(a);
                assert_true(v >= 10 && v < 20);
                seen[v - 10] = true;
                json_decref(a);
        }
        for (int i = 0; i < 10; i++)
                assert_true(seen[i]);
}

typedef struct Ts {
        const char *text;
        int r;
        int64_t usec;
        const char *formatted;
} Ts;

static void test_timestamps(void **state _unused_) {
        static const Ts cases[] = {
                { "1970-01-01T00:00:00Z", 0, 0, "1970-01-01T00:00:00.000Z" },
                { "2026-12-04T16:20:00Z", 0, 1796401200LL * 1000000, "2026-12-04T16:20:00.000Z" },
                { "2026-12-04T13:20:00-03:00", 0, 1796401200LL * 1000000, "2026-12-04T16:20:00.000Z" },
                { "2026-12-04T17:50:00+01:30", 0, 1796401200LL * 1000000, "2026-12-04T16:20:00.000Z" },
                { "2026-12-04T16:20:00.5Z", 0, 1796401200LL * 1000000 + 500000, "2026-12-04T16:20:00.500Z" },
                { "2026-12-04T16:20:00.123456789Z", 0, 1796401200LL * 1000000 + 123456, "2026-12-04T16:20:00.123Z" },
                { "2024-02-29T00:00:00Z", 0, 1709164800LL * 1000000, "2024-02-29T00:00:00.000Z" },
                { "1969-12-31T23:59:59.5Z", 0, -500000, "1969-12-31T23:59:59.500Z" },
                { "2000-01-01T00:00:00+00:00", 0, 946684800LL * 1000000, "2000-01-01T00:00:00.000Z" },
                { "2025-02-29T00:00:00Z", -EINVAL, 0, NULL },
                { "2026-13-01T00:00:00Z", -EINVAL, 0, NULL },
                { "2026-04-31T00:00:00Z", -EINVAL, 0, NULL },
                { "2026-12-04T24:00:00Z", -EINVAL, 0, NULL },
                { "2026-12-04T16:60:00Z", -EINVAL, 0, NULL },
                { "2026-12-04T16:20:00", -EINVAL, 0, NULL },
                { "2026-12-04t16:20:00Z", -EINVAL, 0, NULL },
                { "2026-12-04T16:20:00z", -EINVAL, 0, NULL },
                { "2026-12-04 16:20:00Z", -EINVAL, 0, NULL },
                { "2026-12-04T16:20:00.Z", -EINVAL, 0, NULL },
                { "2026-12-04T16:20:00+0300", -EINVAL, 0, NULL },
                { "2026-12-04T16:20:00Z ", -EINVAL, 0, NULL },
                { "26-12-04T16:20:00Z", -EINVAL, 0, NULL },
                { "", -EINVAL, 0, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int64_t u = 42;
                char buf[40];
                int r = asl_timestamp_parse(cases[i].text, &u);
                if (r != cases[i].r)
                        fail_msg("%s: r=%d", cases[i].text, r);
                if (r < 0) {
                        assert_int_equal(u, 42);
                        continue;
                }
                if (u != cases[i].usec)
                        fail_msg("%s: %" PRId64 " want %" PRId64, cases[i].text, u, cases[i].usec);
                asl_timestamp_format(u, buf, sizeof buf);
                assert_string_equal(buf, cases[i].formatted);
        }
}

/* Failing every allocation in turn: -ENOMEM and no leak, until it works. */
static int oom_attempt(void *userdata) {
        json_t *context = userdata, *input = NULL, *tmpl = NULL, *got = NULL;
        AslFailure f = {};
        char *err = NULL;
        bool m;
        int r;

        input = json_loads("{\"store\":{\"book\":[{\"p\":1,\"t\":\"a\"},{\"p\":20,\"t\":\"b\"}]},\"s\":\"x,y\","
                           "\"when\":\"2026-12-04T16:20:00Z\"}",
                           0, NULL);
        tmpl = json_loads("{\"cheap.$\":\"$..book[?(@.p < 10 && @.t == 'a')].t\",\"n.$\":\"States.ArrayLength("
                          "States.StringSplit($.s, ','))\",\"m.$\":\"States.Format('{} {}', $$.State.Name, "
                          "States.JsonToString($.store.book[0]))\",\"k\":[{\"h.$\":\"States.Hash($.s, 'MD5')\"}],"
                          "\"u.$\":\"States.ArrayUnique(States.Array(1, 1, $.s))\","
                          "\"j.$\":\"States.StringToJson(States.JsonToString($.store))\","
                          "\"b.$\":\"States.Base64Decode(States.Base64Encode($.s))\","
                          "\"p.$\":\"States.ArrayPartition(States.ArrayRange(1, 9, 2), 2)\","
                          "\"g.$\":\"States.JsonMerge($.store, $.store.book[0], false)\","
                          "\"c.$\":\"States.ArrayContains($.store.book, $.store.book[1])\","
                          "\"i.$\":\"States.ArrayGetItem($.store.book, 1)\",\"sum.$\":\"States.MathAdd(1, 2)\","
                          "\"x.$\":\"$.store.book[-1:]\",\"y.$\":\"$['store']..['p','t']\"}",
                          0, NULL);
        if (!input || !tmpl) {
                r = -ENOMEM;
                goto finish;
        }
        r = asl_template_check(tmpl, &err);
        if (r < 0)
                goto finish;
        r = asl_template_eval(tmpl, input, context, &got, &f);
        if (r < 0)
                goto finish;
        json_decref(tmpl);
        tmpl = json_loads("{\"And\":[{\"Variable\":\"$.when\",\"TimestampLessThanPath\":\"$$.State.EnteredTime\"},"
                          "{\"Not\":{\"Variable\":\"$.s\",\"StringMatches\":\"x*\"}}]}",
                          0, NULL);
        if (!tmpl) {
                r = -ENOMEM;
                goto finish;
        }
        r = asl_choice_check(tmpl, false, &err);
        if (r < 0)
                goto finish;
        r = asl_choice_eval(tmpl, input, context, &m, &f);
        if (r < 0)
                goto finish;
        json_decref(input);
        input = TAKE_PTR(got);
        r = asl_path_apply_result("$.a.b", input, context, &got, &f);
        if (r < 0)
                goto finish;
        /* A failure must still be told apart from an allocation failure. */
        r = asl_path_select("$.nope", input, context, &tmpl, &f);
        if (r == -EINVAL && streq_ptr(f.error, "States.Runtime"))
                r = 0;
finish:
        asl_failure_clear(&f);
        free(err);
        json_decref(got);
        json_decref(tmpl);
        json_decref(input);
        return r;
}

static void test_oom(void **state _unused_) {
        json_t *context = load(CONTEXT);
        unsigned long n = oom_loop(oom_attempt, context, 0);
        assert_true(n > 20);
        json_decref(context);
}

/* Bounds: deep nesting and long paths fail cleanly. */
static void test_bounds(void **state _unused_) {
        char *path = malloc(ASL_PATH_MAX + 10), *err = NULL;
        json_t *deep = json_array(), *cur = deep, *got = NULL;
        AslFailure f = {};

        assert_non_null(path);
        path[0] = '$';
        for (size_t i = 1; i < ASL_PATH_MAX + 5; i++)
                path[i] = i % 2 ? '.' : 'a';
        path[ASL_PATH_MAX + 5] = '\0';
        assert_int_equal(asl_path_check(path, false, false, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        free(path);

        for (int i = 0; i < 600; i++) {
                json_t *n = json_array();
                json_array_append_new(cur, n);
                cur = n;
        }
        assert_int_equal(asl_path_select("$..[0]", deep, NULL, &got, &f), -EINVAL);
        assert_string_equal(f.error, "States.Runtime");
        asl_failure_clear(&f);
        json_decref(deep);

        /* Filters inside a scan multiply the work: the visits are bounded. */
        deep = json_array();
        cur = deep;
        for (int i = 0; i < 500; i++) {
                json_t *n = json_array();
                json_array_append_new(cur, n);
                for (int k = 1; k < 10; k++)
                        json_array_append_new(cur, json_integer(k));
                cur = n;
        }
        assert_int_equal(asl_path_select("$..[?(@..z)]", deep, NULL, &got, &f), -EINVAL);
        assert_string_equal(f.error, "States.Runtime");
        assert_non_null(strstr(f.cause, "visited"));
        asl_failure_clear(&f);
        assert_int_equal(asl_path_select("$..[?(@ == 9)]", deep, NULL, &got, &f), 0);
        assert_int_equal(json_array_size(got), 500);
        json_decref(got);
        json_decref(deep);

        json_t *rule = json_pack("{s:s,s:b}", "Variable", "$.a", "IsNull", 1);
        for (int i = 0; i < ASL_DEPTH_MAX + 2; i++)
                rule = json_pack("{s:o}", "Not", rule);
        assert_int_equal(asl_choice_check(rule, false, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        json_decref(rule);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),          cmocka_unit_test(test_result_path_copies),
                cmocka_unit_test(test_compiled_share), cmocka_unit_test(test_reads_only),
                cmocka_unit_test(test_uuid),           cmocka_unit_test(test_math_random),
                cmocka_unit_test(test_timestamps),     cmocka_unit_test(test_oom),
                cmocka_unit_test(test_bounds),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
